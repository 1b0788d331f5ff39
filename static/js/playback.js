// Assistant playback driven by the server's control messages; shared by talk.js and monitor.js.
import { PcmPlayerNode } from './pcm-player-node.js';
import { ServerMessage } from './protocol.js';

// While the server decides whether a sound over the reply is a backchannel ("mhm") or a
// barge-in, the reply plays on at this volume (playback.duck), no gap.
export const DUCKED_GAIN = 0.25;
const DUCK_TIME_CONSTANT_S = 0.02; // about 60 ms to settle
const RESUME_TIME_CONSTANT_S = 0.05;

export class AssistantPlayback {
  // onActive(active: boolean): the player started or finished sounding audio.
  // onItemStarted(itemId): an assistant item began sounding (once per item; the server times
  // the turn with it). destination: where the player connects (a gain node or the destination).
  constructor(context, destination, { onActive, onItemStarted, onError } = {}) {
    this.onActive = onActive ?? (() => {});
    this.onItemStarted = onItemStarted ?? (() => {});
    this.lastStartedItem = null;
    this.node = new PcmPlayerNode(context, {
      onStarted: (itemId) => {
        this.onActive(true);
        if (itemId !== null && itemId !== this.lastStartedItem) {
          this.lastStartedItem = itemId;
          this.onItemStarted(itemId);
        }
      },
      onDrained: () => this.onActive(this.node.active),
      onError: (event) => {
        this.onActive(false);
        if (onError) onError(event);
      },
    });
    this.duck = context.createGain();
    this.node.connect(this.duck);
    this.duck.connect(destination);
    this.ducked = false;
  }

  // The volume the reply plays at: lowered by playback.duck, back by resume or a clear.
  _setGain(value, timeConstant) {
    const gain = this.duck.gain;
    const now = this.duck.context.currentTime;
    gain.cancelScheduledValues(now);
    gain.setValueAtTime(gain.value, now);
    if (timeConstant > 0) gain.setTargetAtTime(value, now, timeConstant);
    else gain.setValueAtTime(value, now);
  }

  audio(buffer) {
    if (this.node.enqueue(buffer)) this.onActive(true);
  }

  // Handles audio.start, audio.done, playback.clear, speech.started and the backchannel
  // messages (playback.duck, .hold, .resume). Resolves to
  // {item_id, played_ms} when playback was cut off (barge-in), null otherwise.
  async handle(message) {
    switch (message.type) {
      case ServerMessage.AUDIO_START:
        this.node.startItem(message.item_id);
        return null;
      case ServerMessage.AUDIO_DONE:
        this.node.endItem(message.item_id);
        return null;
      case ServerMessage.PLAYBACK_CLEAR:
      case ServerMessage.SPEECH_STARTED:
        return this.interrupt();
      case ServerMessage.PLAYBACK_DUCK:
        this.ducked = true;
        this._setGain(DUCKED_GAIN, DUCK_TIME_CONSTANT_S);
        return null;
      case ServerMessage.PLAYBACK_HOLD:
        this.node.hold(true);
        return null;
      case ServerMessage.PLAYBACK_RESUME:
        this.ducked = false;
        this.node.hold(false);
        this._setGain(1, RESUME_TIME_CONSTANT_S);
        return null;
      default:
        return null;
    }
  }

  async interrupt() {
    this.ducked = false;
    const heard = await this.node.clear();
    this._setGain(1, 0); // the next reply plays at full volume
    this.onActive(false);
    return heard;
  }

  disconnect() {
    this.node.port.onmessage = null;
    this.node.disconnect();
    this.duck.disconnect();
  }
}
