// Assistant playback driven by the server's control messages; shared by talk.js and monitor.js.
import { PcmPlayerNode } from './pcm-player-node.js';
import { ServerMessage } from './protocol.js';

export class AssistantPlayback {
  // onActive(active: boolean): the player started or finished sounding audio.
  // destination: where the player connects (a gain node for muting, or context.destination).
  constructor(context, destination, { onActive, onError } = {}) {
    this.onActive = onActive ?? (() => {});
    this.node = new PcmPlayerNode(context, {
      onStarted: () => this.onActive(true),
      onDrained: () => this.onActive(this.node.active),
      onError: (event) => {
        this.onActive(false);
        if (onError) onError(event);
      },
    });
    this.node.connect(destination);
  }

  audio(buffer) {
    if (this.node.enqueue(buffer)) this.onActive(true);
  }

  // Handles audio.start, audio.done, playback.clear and speech.started. Resolves to
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
      default:
        return null;
    }
  }

  async interrupt() {
    const heard = await this.node.clear();
    this.onActive(false);
    return heard;
  }

  disconnect() {
    this.node.port.onmessage = null;
    this.node.disconnect();
  }
}
