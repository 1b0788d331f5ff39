// One conversation of the talk page, from Start to its end: the audio context, the microphone,
// the capture and player worklets and the voice socket. It looks up no element: talk.js hands it
// the SessionView and hooks for the page's own controls.
import { registerWorklets } from './audio-worklet.js';
import { showClose } from './close-notice.js';
import { gettext, interpolate } from './i18n.js';
import { PcmCaptureNode } from './pcm-capture-node.js';
import { AssistantPlayback } from './playback.js';
import {
  CLEAN_END_CODES,
  ClientMessage,
  NON_FATAL_CODES,
  ServerMessage,
  State,
  TRANSIENT_CODES,
  TurnMode,
  VOICE_PATH,
} from './protocol.js';
import { closeMessage, errorMessage, quotaWarningMessage, resumedMessage } from './protocol-texts.js';
import { ToolLines } from './tool-lines.js';
import { VoiceSocket, socketUrl } from './voice-socket.js';

// Playback volume with the speakerphone setting on: less of the assistant reaches the microphone,
// so the browser's echo canceller has less to remove (it is on either way).
export const SPEAKERPHONE_GAIN = 0.5;
// Push-to-talk: the microphone keeps sending this long after the release before input.release,
// so the last syllable (people let go as they finish the word) is in the turn.
export const RELEASE_TAIL_MS = 250;
// Push-to-talk sends no audio between turns: a ping this often tells the server's hard idle
// timeout the page is still there, as the microphone frames of voice activity do.
export const KEEPALIVE_MS = 60_000;

// The user's time zone, for the assistant's date and time tool ('' if the browser hides it).
function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone ?? '';
  } catch {
    return '';
  }
}

// How the talk page words a close (close-notice.js).
const CLOSE_TEXTS = {
  retrying: (detail, seconds) =>
    `${closeMessage(detail.code)} ${interpolate(gettext('Trying again in %(seconds)s s (attempt %(attempt)s of %(tries)s).'), {
      seconds,
      attempt: detail.attempt,
      tries: detail.maxTries,
    })}`,
  gaveUp: (detail) =>
    `${closeMessage(detail.code).replace(` ${gettext('Reconnecting…')}`, '')} ${interpolate(
      gettext('Gave up after %(tries)s attempts; press Start to try again.'),
      { tries: detail.maxTries },
    )}`,
  notConnected: gettext('Could not connect to the server. Check your connection, or reload the page to log in again.'),
};

function microphoneMessage(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return gettext(
        'Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and press Start again.',
      );
    case 'NotFoundError':
    case 'OverconstrainedError':
      return gettext('No microphone was found. Connect one and press Start again.');
    case 'NotReadableError':
    case 'AbortError':
      return gettext('The microphone could not be opened: another application may be using it.');
    default:
      return interpolate(gettext('The microphone could not be opened (%(error)s).'), {
        error: error?.name ?? gettext('unknown error'),
      });
  }
}

// What getUserMedia is asked for: mono, with the browser's echo cancellation, noise suppression
// and automatic gain all requested explicitly (phones default differently); a chosen device
// exactly, or the default one.
export function microphoneConstraints(deviceId = '') {
  const audio = { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) audio.deviceId = { exact: deviceId };
  return audio;
}

export class TalkSession {
  // view: the page's SessionView. worklets: {capture, player}, the processor module URLs;
  // profileId: '' for the user's default; muted: the microphone starts muted; micId and
  // outputId: device ids ('' for the default); speakerphone: quieter playback. Hooks: onChange()
  // when ready changed (the page's controls), onLevel(rms) for the microphone meter,
  // onProfile(profile) from session.ready and profile.updated, onMicrophone() once the
  // microphone is open (device names are readable from then on), onEnd() once it is torn down,
  // onTurnMode({mode, canSwitch, holding}) when the turn mode or the push-to-talk hold changed.
  constructor(
    view,
    { worklets, profileId = '', muted = false, micId = '', outputId = '', speakerphone = false, resumeId = '', draft = false },
    { onChange, onLevel, onProfile, onMicrophone, onEnd, onTurnMode },
  ) {
    this.view = view;
    this.worklets = worklets;
    this.profileId = profileId;
    this.resumeId = resumeId; // a conversation of the user's to continue ('' for a new one)
    this.draft = draft; // talk to the profile's draft (staff only; the server checks)
    this.muted = muted;
    this.micId = micId;
    this.outputId = outputId;
    this.speakerphone = speakerphone;
    this.hooks = {
      onChange,
      onLevel,
      onProfile,
      onMicrophone: onMicrophone ?? (() => {}),
      onEnd,
      onTurnMode: onTurnMode ?? (() => {}),
    };
    this.context = null;
    this.output = null; // the gain node the assistant plays through (speakerphone volume)
    this.stream = null;
    this.source = null;
    this.capture = null;
    this.playback = null;
    this.socket = null;
    this.ready = false; // session.ready on the current socket: audio and text may go out
    this.stopping = false; // Stop was pressed (or the page is going away)
    this.ended = false; // torn down: late events are ignored
    this.lastError = null; // the last fatal error message: it explains the close that follows
    this.sessions = 0; // session.ready messages so far: more than one means a reconnect
    // Push-to-talk: microphone frames go out only while the button is held (and for
    // RELEASE_TAIL_MS after), so nothing is heard between turns; see docs/protocol.md.
    this.turnMode = TurnMode.VOICE_ACTIVITY;
    this.canSwitch = false;
    this.holding = false;
    this.releaseTimer = null;
    this.tools = new ToolLines(view, {
      onAnswer: (callId, approved) =>
        this.socket?.sendJson({ type: ClientMessage.TOOL_APPROVAL, call_id: callId, approved }),
    });
    this.keepalive = null;
  }

  // Call it from the click handler: the AudioContext is created before the first await.
  async start() {
    // Created and resumed inside the click handler, before any await: autoplay policy.
    const context = new AudioContext({ latencyHint: 'interactive' });
    const resumed = context.resume();
    this.context = context;
    this.view.setState(State.CONNECTING);
    this.view.log('local', `audio context at ${context.sampleRate} Hz`);

    try {
      await resumed;
      await registerWorklets(context, this.worklets.capture, this.worklets.player);
    } catch (error) {
      this.fail(
        interpolate(gettext('The audio engine could not start (%(error)s).'), { error: error?.message ?? error }),
      );
      return;
    }
    if (this.outputId) await this.setOutputDevice(this.outputId);
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: microphoneConstraints(this.micId) });
    } catch (error) {
      this.fail(microphoneMessage(error));
      return;
    }
    this.hooks.onMicrophone();
    if (this.stopping || this.ended) {
      // Stopped while the browser asked for the microphone: release it again.
      this._stopTracks();
      this._teardown(State.STOPPED);
      return;
    }

    const onProcessorError = () => this.fail(gettext('The audio engine stopped working. Press Start to try again.'));
    this.output = context.createGain();
    this.output.gain.value = this.speakerphone ? SPEAKERPHONE_GAIN : 1;
    this.output.connect(context.destination);
    this.playback = new AssistantPlayback(context, this.output, {
      onActive: (active) => {
        if (!this.ended) this.view.setPlaybackActive(active);
      },
      // A measurement for the server's turn timings (end of speech -> first audio played).
      onItemStarted: (itemId) => {
        if (!this.ended && this.socket) this.socket.sendJson({ type: ClientMessage.PLAYBACK_STARTED, item_id: itemId });
      },
      onError: onProcessorError,
    });
    this.capture = new PcmCaptureNode(context, {
      onChunk: (pcm, rms) => {
        this.hooks.onLevel(rms);
        // Audio before session.ready would be dropped by the server anyway.
        if (this.ready && this._micOpen()) this.socket.sendAudio(pcm.buffer);
      },
      onError: onProcessorError,
    });
    this.source = context.createMediaStreamSource(this.stream);
    this.source.connect(this.capture);
    this.capture.connect(context.destination); // silent: keeps the capture node pulled
    this.capture.setMuted(this.muted);

    const socket = new VoiceSocket(
      () => socketUrl(VOICE_PATH, {
        profile: this.profileId,
        resume: this.resumeId,
        tz: browserTimeZone(),
        draft: this.draft ? '1' : '',
      }),
      { ackAudio: true },
    );
    this.socket = socket;
    socket.addEventListener('message', (event) => this._onMessage(event.detail));
    socket.addEventListener('sent', (event) => this.view.log('out', event.detail));
    socket.addEventListener('audio', (event) => {
      if (this.playback) this.playback.audio(event.detail);
    });
    socket.addEventListener('open', () => this.view.log('local', 'websocket open'));
    socket.addEventListener('close', (event) => this._onClose(event.detail));
    socket.connect();
  }

  stop() {
    this.stopping = true;
    if (this.playback) this.playback.interrupt();
    if (this.socket) {
      this.socket.stop(); // the close event finishes the job
    } else {
      this._teardown(State.STOPPED);
    }
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.capture) this.capture.setMuted(muted);
  }

  // Speakerphone: the assistant plays at SPEAKERPHONE_GAIN; off: at full volume.
  setSpeakerphone(on) {
    this.speakerphone = on;
    if (this.output) this.output.gain.setTargetAtTime(on ? SPEAKERPHONE_GAIN : 1, this.context.currentTime, 0.02);
  }

  // Where the assistant is heard, where the browser can choose (AudioContext.setSinkId).
  async setOutputDevice(deviceId) {
    this.outputId = deviceId;
    if (!this.context || typeof this.context.setSinkId !== 'function') return;
    try {
      await this.context.setSinkId(deviceId);
    } catch (error) {
      this.view.notice(
        interpolate(gettext('The chosen speaker could not be used (%(error)s); playing on the default one.'), {
          error: error?.name ?? error,
        }),
        'warn',
      );
    }
  }

  get pushToTalk() {
    return this.turnMode === TurnMode.PUSH_TO_TALK;
  }

  _micOpen() {
    return !this.pushToTalk || this.holding || this.releaseTimer !== null;
  }

  // Push-to-talk pressed (button or space bar): the assistant stops, the user's turn starts.
  press() {
    if (!this.ready || !this.pushToTalk || this.holding) return false;
    if (this.releaseTimer !== null) this._sendRelease(); // a quick re-press ends the last turn
    this.holding = true;
    this.socket.sendJson({ type: ClientMessage.INPUT_PRESS });
    this._turnModeChanged();
    return true;
  }

  // Released: the tail of the turn still goes out, then input.release asks for the reply.
  release() {
    if (!this.holding) return;
    this.holding = false;
    this.releaseTimer = setTimeout(() => this._sendRelease(), RELEASE_TAIL_MS);
    this._turnModeChanged();
  }

  _sendRelease() {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    if (this.ready) this.socket.sendJson({ type: ClientMessage.INPUT_RELEASE });
  }

  // Switch between voice activity and push-to-talk (the server confirms with turn_mode).
  setTurnMode(mode) {
    return this.ready && this.socket.sendJson({ type: ClientMessage.TURN_MODE_SET, mode });
  }

  _keepAlive() {
    clearInterval(this.keepalive);
    this.keepalive = null;
    if (!this.pushToTalk) return;
    this.keepalive = setInterval(() => {
      if (this.ready && !this.holding) this.socket.sendJson({ type: ClientMessage.PING });
    }, KEEPALIVE_MS);
  }

  _turnModeChanged() {
    this.hooks.onTurnMode({ mode: this.turnMode, canSwitch: this.canSwitch, holding: this.holding });
  }

  // A typed message (text.send); false if it could not be sent.
  sendText(text) {
    return this.ready && this.socket.sendJson({ type: ClientMessage.TEXT_SEND, text });
  }

  fail(message) {
    this.view.notice(message, 'error');
    this.view.log('local', message);
    if (this.socket) this.socket.stop();
    this._teardown(State.ERROR);
  }

  _stopTracks() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
  }

  _teardown(state) {
    if (this.ended) return;
    this.ended = true;
    this.ready = false;
    this.holding = false;
    clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    clearInterval(this.keepalive);
    this.keepalive = null;
    this._stopTracks();
    if (this.source) this.source.disconnect();
    if (this.capture) {
      this.capture.port.onmessage = null;
      this.capture.disconnect();
    }
    if (this.playback) this.playback.disconnect();
    if (this.output) this.output.disconnect();
    this.context.close().catch(() => {});
    this.view.setPlaybackActive(false);
    this.view.setState(state);
    this.hooks.onEnd();
  }

  // ---------------------------------------------------------------- server messages

  async _onMessage(message) {
    if (this.ended) return;
    const view = this.view;
    view.log('in', message);
    switch (message.type) {
      case ServerMessage.STATE:
        view.setState(message.state);
        break;
      case ServerMessage.SESSION_READY:
        this.ready = true;
        this.lastError = null;
        view.clearNotice();
        if (this.sessions++ > 0) view.addNote(gettext('Reconnected: a new session started.'));
        this.hooks.onProfile(message.profile);
        this.hooks.onChange();
        break;
      case ServerMessage.PROFILE_UPDATED:
        this.hooks.onProfile(message.profile);
        view.notice(gettext('An administrator updated this profile; the change applies from your next turn.'), 'info');
        break;
      case ServerMessage.TURN_MODE:
        this.turnMode = message.mode;
        this.canSwitch = message.can_switch;
        if (!this.pushToTalk) this.holding = false;
        this._keepAlive();
        this._turnModeChanged();
        break;
      case ServerMessage.CONVERSATION_RESUMED:
        view.addNote(resumedMessage(message));
        break;
      case ServerMessage.QUOTA_WARNING:
        view.notice(quotaWarningMessage(message), 'warn');
        break;
      case ServerMessage.PROFILE_HANDOVER:
        this.hooks.onProfile(message.profile);
        view.addNote(interpolate(gettext('Handed over to %(name)s.'), { name: message.profile?.name ?? '' }));
        break;
      case ServerMessage.SESSION_ENDING:
        view.addNote(gettext('The assistant ended the conversation.'));
        break;
      case ServerMessage.ERROR:
        if (CLEAN_END_CODES.has(message.code)) {
          // The server ends the session normally just after: say why, as a note too.
          view.notice(errorMessage(message), 'info');
          view.addNote(errorMessage(message));
        } else if (NON_FATAL_CODES.has(message.code) || TRANSIENT_CODES.has(message.code)) {
          view.notice(errorMessage(message), 'warn');
        } else {
          this.lastError = message;
          view.notice(errorMessage(message), 'error');
        }
        break;
      default:
        break;
    }
    view.handleConversation(message);
    this.tools.handle(message);
    if (this.playback) {
      const heard = await this.playback.handle(message);
      if (heard && !this.ended) this.socket.sendJson({ type: ClientMessage.PLAYBACK_INTERRUPTED, ...heard });
    }
  }

  _onClose(detail) {
    if (this.ended) return;
    this.ready = false;
    this.holding = false;
    this.hooks.onChange();
    const { state, message } = showClose(this.view, detail, {
      ended: this.stopping,
      lastError: this.lastError,
      texts: CLOSE_TEXTS,
    });
    if (this.playback) this.playback.interrupt();
    if (state === State.CONNECTING) return;
    this.view.addNote(state === State.STOPPED ? gettext('Session ended.') : message);
    this._teardown(state);
  }
}
