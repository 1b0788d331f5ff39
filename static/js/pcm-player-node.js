// Main-thread wrapper of worklets/pcm-player-processor.js (loaded by registerWorklets()):
// enqueue(int16) and clear(), with the item each chunk belongs to, so clear() can say how much
// of which item was actually heard.
const PROCESSOR_NAME = 'pcm-player-processor';
const CLEAR_TIMEOUT_MS = 250;

export class PcmPlayerNode extends AudioWorkletNode {
  // onStarted(itemId), onDrained({underruns}): playback (re)started / the buffer ran empty and nothing
  // more is on its way to the processor. onError(event): the processor failed.
  constructor(context, { onStarted, onDrained, onError } = {}) {
    super(context, PROCESSOR_NAME, {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.itemId = null;
    this._posted = 0; // chunks posted to the processor
    this._settled = 0; // of those, how many it had received at its last drain or clear
    this._clears = new Map();
    this._nextClearId = 1;
    this._cleared = new Set(); // items cut off by clear(): late frames of theirs are dropped
    this.playing = false;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.type === 'cleared') {
        this._settled = data.received;
        const resolve = this._clears.get(data.id);
        this._clears.delete(data.id);
        if (resolve) resolve(data.itemId === null ? null : { item_id: data.itemId, played_ms: data.playedMs });
      } else if (data.type === 'started') {
        this.playing = true;
        if (onStarted) onStarted(data.itemId ?? null);
      } else if (data.type === 'drained') {
        this.playing = false;
        this._settled = data.received;
        if (data.received === this._posted && onDrained) onDrained({ underruns: data.underruns });
      }
    };
    this.onprocessorerror = (event) => {
      this.playing = false;
      for (const resolve of this._clears.values()) resolve(null);
      this._clears.clear();
      if (onError) onError(event);
    };
  }

  // True while audio is queued or playing.
  get active() {
    return this.playing || this._posted > this._settled;
  }

  // The binary frames that follow belong to this item (the server's audio.start).
  startItem(itemId) {
    this.itemId = itemId;
  }

  // No more audio for this item (audio.done): play out whatever is buffered, however short.
  endItem(itemId) {
    this.port.postMessage({ type: 'end', itemId });
  }

  // Queue 24 kHz mono PCM16 (an Int16Array or an ArrayBuffer); the buffer is transferred.
  enqueue(pcm) {
    if (this.itemId !== null && this._cleared.has(this.itemId)) return false;
    const samples = pcm instanceof Int16Array ? pcm : new Int16Array(pcm);
    if (samples.length === 0) return false;
    this._posted += 1;
    this.port.postMessage({ type: 'chunk', pcm: samples, itemId: this.itemId }, [samples.buffer]);
    return true;
  }

  // Pause where playback is (held true), or go on from there (false); nothing is dropped.
  hold(held) {
    this.port.postMessage({ type: 'hold', held });
  }

  // Stop at once. Resolves to {item_id, played_ms} of what was playing, or null if nothing was.
  clear() {
    const id = this._nextClearId++;
    if (this.itemId !== null) this._cleared.add(this.itemId);
    this.playing = false;
    return new Promise((resolve) => {
      this._clears.set(id, resolve);
      this.port.postMessage({ type: 'clear', id });
      setTimeout(() => {
        if (this._clears.delete(id)) resolve(null);
      }, CLEAR_TIMEOUT_MS);
    });
  }
}
