// A streaming low-pass FIR for the audio worklets (Blackman-windowed sinc), shared by the
// capture and player processors. Imported by the processor modules; registers no processor.

const CUTOFF_HZ = 10000; // keeps speech, removes everything a 24 kHz stream cannot hold (> 12 kHz)
const TAPS_AT_48K = 63; // transition ~4 kHz wide at 48 kHz: flat to ~8 kHz, -74 dB from 12 kHz

function blackmanSinc(taps, cutoff) {
  // cutoff as a fraction of the sample rate (0..0.5); unity gain at DC
  const h = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

export class FirLowPass {
  // rate: the sample rate the filter runs at. Same transition width in Hz at any rate, so more
  // taps at higher rates (odd length).
  constructor(rate) {
    const taps = Math.max(31, Math.round((TAPS_AT_48K * rate) / 48000) | 1);
    this.taps = blackmanSinc(taps, CUTOFF_HZ / rate);
    // Each sample is written twice (i and i + taps) so the newest `taps` samples are always
    // contiguous: no modulo inside the convolution.
    this.history = new Float32Array(taps * 2);
    this.pos = 0;
  }

  reset() {
    this.history.fill(0);
  }

  push(sample) {
    const fir = this.taps;
    const taps = fir.length;
    const history = this.history;
    let pos = this.pos;
    history[pos] = sample;
    history[pos + taps] = sample;
    pos += 1;
    if (pos === taps) pos = 0;
    this.pos = pos;
    // history[pos .. pos + taps) now holds the newest `taps` samples, oldest first.
    let acc = 0;
    for (let k = 0; k < taps; k++) acc += fir[k] * history[pos + k];
    return acc;
  }
}
