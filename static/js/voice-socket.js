// One websocket with JSON control frames and binary PCM16 audio frames, reconnecting with
// exponential backoff only after the close codes the protocol marks retryable.
import { ClientMessage, CloseCode, RETRYABLE_CLOSE_CODES, ServerMessage } from './protocol.js';

// A message of one of these types means the session is up: the retry budget starts again.
const SESSION_UP_MESSAGES = Object.freeze(new Set([ServerMessage.SESSION_READY, ServerMessage.MONITOR_ATTACHED]));

// The browser acknowledges the assistant audio it has received about every this many bytes
// (2 s of 24 kHz PCM16); the server keeps a bounded window unacknowledged (docs/protocol.md).
const AUDIO_ACK_BYTES = 96000;

const RECONNECT = Object.freeze({
  FIRST_DELAY_MS: 500,
  MAX_DELAY_MS: 8000,
  MAX_TRIES: 5,
});

// ws: or wss: following the page, on this host.
export function socketUrl(path, query = {}) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = new URL(`${scheme}://${location.host}${path}`);
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(key, String(value));
  }
  return url.toString();
}

const STOP_GRACE_MS = 1500;

export class VoiceSocket extends EventTarget {
  // url: a function returning the URL (so a retry can pick up current page choices) or a string.
  // ackAudio: acknowledge received audio (the voice socket's flow control; see docs/protocol.md).
  constructor(url, { retry = true, ackAudio = false } = {}) {
    super();
    this._url = typeof url === 'function' ? url : () => url;
    this._retry = retry;
    this._ackAudio = ackAudio;
    this._ws = null;
    this._attempt = 0;
    this._timer = null;
    this._stopping = false;
  }

  get isOpen() {
    return this._ws !== null && this._ws.readyState === WebSocket.OPEN;
  }

  connect() {
    this._stopping = false;
    this._open();
  }

  _open() {
    clearTimeout(this._timer);
    this._timer = null;
    const ws = new WebSocket(this._url());
    ws.binaryType = 'arraybuffer';
    this._ws = ws;
    let opened = false;
    let received = 0; // audio bytes received on this socket
    let acked = 0;
    ws.addEventListener('open', () => {
      opened = true;
      this._emit('open', { attempt: this._attempt });
    });
    ws.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') {
        received += event.data.byteLength;
        if (this._ackAudio && received - acked >= AUDIO_ACK_BYTES && ws.readyState === WebSocket.OPEN) {
          // Not through sendJson: acks are flow control, not worth an event log line each.
          ws.send(JSON.stringify({ type: ClientMessage.AUDIO_ACK, bytes: received }));
          acked = received;
        }
        this._emit('audio', event.data);
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON text; ignore anything else
      }
      if (SESSION_UP_MESSAGES.has(message.type)) this._attempt = 0;
      this._emit('message', message);
    });
    ws.addEventListener('close', (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      const code = event.code;
      // A reconnect whose handshake failed (it reached the worker that is going away, or a
      // proxy reset it under the storm of reconnects) is one more retry, not the end.
      const failedReconnect = !opened && this._attempt > 0;
      const retryable =
        this._retry && !this._stopping && (RETRYABLE_CLOSE_CODES.has(code) || failedReconnect);
      const willRetry = retryable && this._attempt < RECONNECT.MAX_TRIES;
      let delayMs = 0;
      if (willRetry) {
        const backoff = Math.min(RECONNECT.FIRST_DELAY_MS * 2 ** this._attempt, RECONNECT.MAX_DELAY_MS);
        // Between half and all of the backoff: the sessions of a drained worker do not all
        // knock on the next one at the same instant.
        delayMs = Math.round(backoff * (0.5 + Math.random() / 2));
        this._attempt += 1;
        this._timer = setTimeout(() => this._open(), delayMs);
      }
      this._emit('close', {
        code,
        reason: event.reason,
        opened,
        stopping: this._stopping,
        willRetry,
        retriesExhausted: retryable && !willRetry,
        delayMs,
        attempt: this._attempt,
        maxTries: RECONNECT.MAX_TRIES,
      });
    });
  }

  sendJson(message) {
    if (!this.isOpen) return false;
    this._ws.send(JSON.stringify(message));
    this._emit('sent', message);
    return true;
  }

  sendAudio(buffer) {
    if (!this.isOpen) return false;
    this._ws.send(buffer);
    return true;
  }

  // Ask the server to end the session (it closes with 1000); close ourselves if it does not.
  stop() {
    this._stopping = true;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    if (ws === null) return;
    if (ws.readyState === WebSocket.OPEN) {
      this.sendJson({ type: ClientMessage.SESSION_STOP });
      setTimeout(() => {
        if (ws.readyState !== WebSocket.CLOSED) ws.close(CloseCode.NORMAL);
      }, STOP_GRACE_MS);
    } else {
      ws.close(CloseCode.NORMAL);
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
