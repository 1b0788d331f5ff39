// The talk page: the only module of the page that looks elements up in the document.
import { audioWorkletSupported, registerWorklets, UNSUPPORTED_AUDIO_MESSAGE } from './audio-worklet.js';
import { showClose } from './close-notice.js';
import { PcmCaptureNode } from './pcm-capture-node.js';
import { AssistantPlayback } from './playback.js';
import {
  ClientMessage,
  MAX_TEXT_CHARS,
  NON_FATAL_ERRORS,
  ServerMessage,
  TRANSIENT_ERRORS,
  VOICE_PATH,
  closeMessage,
  socketUrl,
} from './protocol.js';
import { SessionView, sessionElements } from './session-view.js';
import { VoiceSocket } from './voice-socket.js';

const LEVEL_FLOOR_DB = -60;
// How this page words a close (close-notice.js).
const CLOSE_TEXTS = {
  retrying: (detail, seconds) =>
    `${closeMessage(detail.code)} Trying again in ${seconds} s (attempt ${detail.attempt} of ${detail.maxTries}).`,
  gaveUp: (detail) =>
    `${closeMessage(detail.code).replace(' Reconnecting…', '')} Gave up after ${detail.maxTries} attempts; press Start to try again.`,
  notConnected: 'Could not connect to the server. Check your connection, or reload the page to log in again.',
};

const $ = (id) => document.getElementById(id);
const root = $('talk');
const ui = {
  start: $('start'),
  stop: $('stop'),
  mute: $('mute'),
  profile: $('profile'),
  level: $('mic-level'),
  levelBar: $('mic-level-bar'),
  textForm: $('text-form'),
  textInput: $('text-input'),
  textSend: $('text-send'),
  sessionInfo: $('session-info'),
};
const view = new SessionView(sessionElements($));

let session = null; // the live conversation, or null

// ------------------------------------------------------------------ controls

function setControls() {
  const live = session !== null;
  ui.start.disabled = live || !ui.profile;
  ui.stop.disabled = !live;
  if (ui.profile) ui.profile.disabled = live;
  ui.mute.disabled = !live;
  const canType = live && session.ready;
  ui.textInput.disabled = !canType;
  ui.textSend.disabled = !canType;
}

function showLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : LEVEL_FLOOR_DB;
  const level = Math.max(0, Math.min(1, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB));
  const pct = Math.round(level * 100);
  ui.levelBar.style.width = `${pct}%`;
  ui.level.setAttribute('aria-valuenow', String(pct));
}

function microphoneMessage(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and press Start again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one and press Start again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone could not be opened: another application may be using it.';
    default:
      return `The microphone could not be opened (${error?.name ?? 'unknown error'}).`;
  }
}

// ------------------------------------------------------------------ start / stop

async function start() {
  if (session !== null) return;
  view.clearNotice();
  if (!audioWorkletSupported()) {
    view.setState('error');
    view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    view.setState('error');
    view.notice('This page cannot use the microphone: open it over https (or on localhost).', 'error');
    return;
  }
  // Created and resumed inside the click handler, before any await: autoplay policy.
  const context = new AudioContext({ latencyHint: 'interactive' });
  const resumed = context.resume();
  const s = { context, stream: null, capture: null, source: null, playback: null, socket: null };
  s.ready = false;
  s.stopping = false;
  s.lastError = null;
  s.sessions = 0;
  session = s;
  setControls();
  view.setState('connecting');
  view.log('local', `audio context at ${context.sampleRate} Hz`);

  try {
    await resumed;
    await registerWorklets(context, root.dataset.captureWorklet, root.dataset.playerWorklet);
  } catch (error) {
    fail(s, `The audio engine could not start (${error?.message ?? error}).`);
    return;
  }
  try {
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    fail(s, microphoneMessage(error));
    return;
  }
  if (s.stopping) {
    teardown(s, 'stopped');
    return;
  }

  const onProcessorError = () => fail(s, 'The audio engine stopped working. Press Start to try again.');
  s.playback = new AssistantPlayback(context, context.destination, {
    onActive: (active) => {
      if (session === s) view.setPlaybackActive(active);
    },
    onError: onProcessorError,
  });
  s.capture = new PcmCaptureNode(context, {
    onChunk: (pcm, rms) => {
      showLevel(rms);
      // Audio before session.ready would be dropped by the server anyway.
      if (s.ready) s.socket.sendAudio(pcm.buffer);
    },
    onError: onProcessorError,
  });
  s.source = context.createMediaStreamSource(s.stream);
  s.source.connect(s.capture);
  s.capture.connect(context.destination); // silent: keeps the capture node pulled
  s.capture.setMuted(ui.mute.getAttribute('aria-pressed') === 'true');

  const profileId = ui.profile ? ui.profile.value : '';
  s.socket = new VoiceSocket(() => socketUrl(VOICE_PATH, { profile: profileId }), { ackAudio: true });
  s.socket.addEventListener('message', (event) => onMessage(s, event.detail));
  s.socket.addEventListener('sent', (event) => view.log('out', event.detail));
  s.socket.addEventListener('audio', (event) => {
    if (s.playback) s.playback.audio(event.detail);
  });
  s.socket.addEventListener('open', () => view.log('local', 'websocket open'));
  s.socket.addEventListener('close', (event) => onClose(s, event.detail));
  s.socket.connect();
}

function stop() {
  const s = session;
  if (s === null) return;
  s.stopping = true;
  if (s.playback) s.playback.interrupt();
  if (s.socket) {
    s.socket.stop(); // the close event finishes the job
  } else {
    teardown(s, 'stopped');
  }
}

function fail(s, message) {
  view.notice(message, 'error');
  view.log('local', message);
  if (s.socket) s.socket.stop();
  teardown(s, 'error');
}

function teardown(s, state) {
  if (session !== s) return;
  session = null;
  s.ready = false;
  if (s.stream) for (const track of s.stream.getTracks()) track.stop();
  if (s.source) s.source.disconnect();
  if (s.capture) {
    s.capture.port.onmessage = null;
    s.capture.disconnect();
  }
  if (s.playback) s.playback.disconnect();
  s.context.close().catch(() => {});
  showLevel(0);
  view.setPlaybackActive(false);
  view.setState(state);
  setControls();
}

// ------------------------------------------------------------------ server messages

async function onMessage(s, message) {
  if (session !== s) return;
  view.log('in', message);
  switch (message.type) {
    case ServerMessage.STATE:
      view.setState(message.state);
      break;
    case ServerMessage.SESSION_READY:
      s.ready = true;
      s.lastError = null;
      view.clearNotice();
      if (s.sessions++ > 0) view.addNote('Reconnected: a new session started.');
      ui.sessionInfo.textContent = `Profile: ${message.profile?.name ?? '—'}`;
      setControls();
      break;
    case ServerMessage.PROFILE_UPDATED:
      ui.sessionInfo.textContent = `Profile: ${message.profile?.name ?? '—'}`;
      view.notice('An administrator updated this profile; the change applies from your next turn.', 'info');
      break;
    case ServerMessage.ERROR:
      if (NON_FATAL_ERRORS.has(message.code) || TRANSIENT_ERRORS.has(message.code)) {
        view.notice(message.message ?? message.code, 'warn');
      } else {
        s.lastError = message;
        view.notice(message.message ?? message.code, 'error');
      }
      break;
    default:
      break;
  }
  view.handleConversation(message);
  if (s.playback) {
    const heard = await s.playback.handle(message);
    if (heard && session === s) s.socket.sendJson({ type: ClientMessage.PLAYBACK_INTERRUPTED, ...heard });
  }
}

function onClose(s, detail) {
  if (session !== s) return;
  s.ready = false;
  setControls();
  const { state, message } = showClose(view, detail, {
    ended: s.stopping,
    lastError: s.lastError,
    texts: CLOSE_TEXTS,
  });
  if (s.playback) s.playback.interrupt();
  if (state === 'connecting') return;
  view.addNote(state === 'stopped' ? 'Session ended.' : message);
  teardown(s, state);
}

// ------------------------------------------------------------------ wiring

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
ui.mute.addEventListener('click', () => {
  const muted = ui.mute.getAttribute('aria-pressed') !== 'true';
  ui.mute.setAttribute('aria-pressed', String(muted));
  ui.mute.textContent = muted ? 'Unmute microphone' : 'Mute microphone';
  if (session?.capture) session.capture.setMuted(muted);
});
if (ui.profile) {
  ui.profile.addEventListener('change', () => {
    const url = new URL(location.href);
    url.searchParams.set('profile', ui.profile.value);
    history.replaceState(null, '', url);
  });
}
ui.textForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.textInput.value.trim();
  if (!text || session === null || !session.ready) return;
  if (text.length > MAX_TEXT_CHARS) {
    view.notice(`Messages can be at most ${MAX_TEXT_CHARS} characters.`, 'warn');
    return;
  }
  if (session.socket.sendJson({ type: ClientMessage.TEXT_SEND, text })) {
    view.addTyped(text);
    ui.textInput.value = '';
  }
});
window.addEventListener('pagehide', stop);
setControls();
if (!audioWorkletSupported()) view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
