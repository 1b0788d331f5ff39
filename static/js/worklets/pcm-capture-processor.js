// Microphone capture: the context's native rate in, 24 kHz mono PCM16 out, in 100 ms chunks.
//
// Downsampling is a low-pass FIR (Blackman-windowed sinc, cutoff 10 kHz, at the input rate)
// followed by linear interpolation at fractional positions carried across blocks. The filter
// removes everything the 24 kHz output cannot represent (above 12 kHz) before resampling, so
// nothing folds back as aliasing; the interpolation then only has to pick points on a smooth,
// band-limited signal. Upsampling (a device below 24 kHz) needs no filter.
import { SAMPLE_RATE as TARGET_SAMPLE_RATE } from '../protocol.js';
import { FirLowPass } from './fir-low-pass.js';

// 100 ms at 24 kHz. A worker's cost is per websocket message, so 100 ms frames carry 2.5x the
// sessions of 40 ms ones for at most 60 ms (on average 30 ms) more capture delay; see
// docs/logbook/benchmarks.md, "Frame size".
const CHUNK_SAMPLES = 2400;

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_SAMPLE_RATE; // input samples per output sample
    // Low-pass only when the context runs above 24 kHz (see the header).
    this.fir = sampleRate > TARGET_SAMPLE_RATE ? new FirLowPass(sampleRate) : null;
    this.prev = 0; // last filtered input sample
    this.frac = 0; // position of the next output sample, in input samples after `prev`
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
    this.muted = false;
    this.port.onmessage = (event) => {
      if (event.data.type === 'mute') this.muted = Boolean(event.data.muted);
    };
  }

  emit(value) {
    const s = value > 1 ? 1 : value < -1 ? -1 : value;
    this.chunk[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
    this.sumSquares += s * s;
    const a = s < 0 ? -s : s;
    if (a > this.peak) this.peak = a;
    if (this.filled === CHUNK_SAMPLES) {
      const pcm = this.chunk;
      const rms = Math.sqrt(this.sumSquares / CHUNK_SAMPLES);
      // The buffer is transferred, so a fresh one is needed: one allocation per chunk.
      this.port.postMessage({ type: 'chunk', pcm, rms, peak: this.peak }, [pcm.buffer]);
      this.chunk = new Int16Array(CHUNK_SAMPLES);
      this.filled = 0;
      this.sumSquares = 0;
      this.peak = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const frames = input[0].length;
    const step = this.step;
    for (let i = 0; i < frames; i++) {
      let x = input[0][i];
      if (channels > 1) {
        for (let c = 1; c < channels; c++) x += input[c][i];
        x /= channels;
      }
      if (this.muted) x = 0;
      const cur = this.fir === null ? x : this.fir.push(x);
      const prev = this.prev;
      let frac = this.frac;
      while (frac < 1) {
        this.emit(prev + frac * (cur - prev));
        frac += step;
      }
      this.frac = frac - 1;
      this.prev = cur;
    }
    return true;
  }
}

registerProcessor('pcm-capture-processor', PcmCaptureProcessor);
