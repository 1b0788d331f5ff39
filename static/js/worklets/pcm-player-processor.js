// Assistant playback: 24 kHz mono PCM16 chunks in, the context's rate out, with a jitter buffer.
//
// Port messages in:  {type: 'chunk', pcm: Int16Array, itemId}   (transferred)
//                    {type: 'end', itemId}      no more audio for that item: play what is buffered
//                    {type: 'clear', id}        stop now; answered with 'cleared'
//                    {type: 'hold', held}       pause where it is (a short fade, nothing dropped)
//                                               or go on from there
// Port messages out: {type: 'cleared', id, itemId, playedMs}   itemId null if nothing was playing
//                    {type: 'started', itemId}  playback (re)started after buffering, on itemId
//                    {type: 'drained', received, underruns}   the buffer ran empty while playing
//
// Resampling 24 kHz -> context rate is linear interpolation followed, when upsampling, by a
// low-pass FIR at the output rate (Blackman-windowed sinc, cutoff 10 kHz) that removes the
// images linear interpolation leaves above 12 kHz.
import { SAMPLE_RATE as SOURCE_SAMPLE_RATE } from '../protocol.js';
import { FirLowPass } from './fir-low-pass.js';

const START_THRESHOLD_MS = 80; // jitter buffer: start after this much audio is queued...
const MAX_WAIT_MS = 150; // ...or after this long with something queued and nothing new arriving
const START_THRESHOLD = (SOURCE_SAMPLE_RATE * START_THRESHOLD_MS) / 1000;
const FADE_MS = 10; // hold and resume fade over this long: no click

class PcmPlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = SOURCE_SAMPLE_RATE / sampleRate; // source samples per output sample
    // Low-pass only when the context runs above 24 kHz (see the header).
    this.fir = sampleRate > SOURCE_SAMPLE_RATE ? new FirLowPass(sampleRate) : null;
    this.maxWaitFrames = (sampleRate * MAX_WAIT_MS) / 1000;
    this.chunks = []; // Int16Array queue; chunks[head] is being read at offset `offset`
    this.items = []; // item id of each chunk
    this.head = 0;
    this.offset = 0;
    this.buffered = 0; // source samples queued and not yet read
    this.received = 0; // chunks received in total
    this.playing = false;
    this.waitFrames = 0;
    this.prev = 0;
    this.cur = 0;
    this.frac = 0;
    this.currentItem = null;
    this.itemPlayed = 0; // source samples of currentItem played so far
    this.endedItem = null;
    this.underruns = 0;
    this.held = false;
    this.level = 1; // the hold fade: 0 silent (held), 1 full
    this.fadeStep = 1000 / (sampleRate * FADE_MS);
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(data) {
    if (data.type === 'chunk') {
      if (data.pcm.length === 0) return;
      this.chunks.push(data.pcm);
      this.items.push(data.itemId);
      this.buffered += data.pcm.length;
      this.received += 1;
      this.waitFrames = 0;
    } else if (data.type === 'end') {
      this.endedItem = data.itemId;
    } else if (data.type === 'clear') {
      this.clear(data.id);
    } else if (data.type === 'hold') {
      this.held = Boolean(data.held);
    }
  }

  clear(id) {
    let itemId = null;
    let played = 0;
    if (this.buffered > 0) {
      itemId = this.items[this.head];
      played = itemId === this.currentItem ? this.itemPlayed : 0;
    } else if (this.currentItem !== null && this.currentItem !== this.endedItem) {
      // Ran dry mid-item: the rest of it had not arrived yet.
      itemId = this.currentItem;
      played = this.itemPlayed;
    }
    this.chunks.length = 0;
    this.items.length = 0;
    this.head = 0;
    this.offset = 0;
    this.buffered = 0;
    this.playing = false;
    this.prev = this.cur = this.frac = 0;
    this.currentItem = null;
    this.itemPlayed = 0;
    this.held = false;
    this.level = 1;
    if (this.fir) this.fir.reset();
    const playedMs = Math.round((played * 1000) / SOURCE_SAMPLE_RATE);
    this.port.postMessage({ type: 'cleared', id, itemId, playedMs, received: this.received });
  }

  // The next source sample, or null when the queue is empty.
  read() {
    if (this.buffered === 0) return null;
    const chunk = this.chunks[this.head];
    const item = this.items[this.head];
    if (item !== this.currentItem) {
      this.currentItem = item;
      this.itemPlayed = 0;
    }
    const value = chunk[this.offset] / 32768;
    this.offset += 1;
    this.buffered -= 1;
    this.itemPlayed += 1;
    if (this.offset === chunk.length) {
      this.chunks[this.head] = null;
      this.head += 1;
      this.offset = 0;
      if (this.head > 64 && this.head * 2 > this.chunks.length) {
        this.chunks.splice(0, this.head);
        this.items.splice(0, this.head);
        this.head = 0;
      }
    }
    return value;
  }

  shouldStart(frames) {
    if (this.buffered === 0) return false;
    if (this.buffered >= START_THRESHOLD) return true;
    const tailItem = this.items[this.items.length - 1];
    if (tailItem === this.endedItem) return true; // a short last bit: nothing more is coming
    this.waitFrames += frames;
    return this.waitFrames >= this.maxWaitFrames;
  }

  process(inputs, outputs) {
    const output = outputs[0];
    const out = output[0];
    const frames = out.length;
    if (!this.playing && this.shouldStart(frames)) {
      this.playing = true;
      this.waitFrames = 0;
      this.port.postMessage({ type: 'started', itemId: this.items[this.head] ?? null });
    }
    const step = this.step;
    const target = this.held ? 0 : 1;
    for (let i = 0; i < frames; i++) {
      let y = 0;
      if (this.level !== target) {
        this.level = target > this.level ? Math.min(1, this.level + this.fadeStep) : Math.max(0, this.level - this.fadeStep);
      }
      // Held and faded out: the queue stays where it is until resumed.
      if (this.playing && this.level > 0) {
        y = this.prev + this.frac * (this.cur - this.prev);
        this.frac += step;
        while (this.frac >= 1) {
          this.frac -= 1;
          const next = this.read();
          if (next === null) {
            // Underrun (or the end): hold silence and buffer up again before resuming.
            this.playing = false;
            this.frac = 0;
            this.prev = this.cur = 0;
            if (this.currentItem !== this.endedItem) this.underruns += 1;
            this.port.postMessage({ type: 'drained', received: this.received, underruns: this.underruns });
            break;
          }
          this.prev = this.cur;
          this.cur = next;
        }
      }
      y *= this.level;
      out[i] = this.fir === null ? y : this.fir.push(y);
    }
    for (let c = 1; c < output.length; c++) output[c].set(out);
    return true;
  }
}

registerProcessor('pcm-player-processor', PcmPlayerProcessor);
