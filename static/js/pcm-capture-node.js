// Main-thread wrapper of worklets/pcm-capture-processor.js (loaded by registerWorklets()).
const PROCESSOR_NAME = 'pcm-capture-processor';

export class PcmCaptureNode extends AudioWorkletNode {
  // onChunk(pcm: Int16Array, rms: number, peak: number) receives 100 ms of 24 kHz mono audio.
  constructor(context, { onChunk, onError } = {}) {
    super(context, PROCESSOR_NAME, {
      numberOfInputs: 1,
      // One (silent) output, connected to the destination, so every browser keeps pulling it.
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: 'explicit',
      channelInterpretation: 'speakers',
    });
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.type === 'chunk' && onChunk) onChunk(data.pcm, data.rms, data.peak);
    };
    this.onprocessorerror = (event) => {
      if (onError) onError(event);
    };
  }

  setMuted(muted) {
    this.port.postMessage({ type: 'mute', muted });
  }
}
