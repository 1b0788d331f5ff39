// The talk page: the only module of the page that looks elements up in the document. The
// conversation itself (audio, socket, server messages) is a TalkSession.
import { audioWorkletSupported, UNSUPPORTED_AUDIO_MESSAGE } from './audio-worklet.js';
import { MAX_TEXT_CHARS, State } from './protocol.js';
import { SessionView, sessionElements } from './session-view.js';
import { TalkSession } from './talk-session.js';

const LEVEL_FLOOR_DB = -60;

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

let session = null; // the live TalkSession, or null

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

function showProfile(profile) {
  ui.sessionInfo.textContent = `Profile: ${profile?.name ?? '—'}`;
}

function muted() {
  return ui.mute.getAttribute('aria-pressed') === 'true';
}

// ------------------------------------------------------------------ start / stop

function start() {
  if (session !== null) return;
  view.clearNotice();
  if (!audioWorkletSupported()) {
    view.setState(State.ERROR);
    view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
    return;
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    view.setState(State.ERROR);
    view.notice('This page cannot use the microphone: open it over https (or on localhost).', 'error');
    return;
  }
  const options = {
    worklets: { capture: root.dataset.captureWorklet, player: root.dataset.playerWorklet },
    profileId: ui.profile ? ui.profile.value : '',
    muted: muted(),
  };
  const s = new TalkSession(view, options, {
    onChange: setControls,
    onLevel: showLevel,
    onProfile: showProfile,
    onEnd: () => {
      if (session === s) session = null;
      showLevel(0);
      setControls();
    },
  });
  session = s;
  setControls();
  s.start(); // still inside the click handler: the AudioContext may start
}

function stop() {
  if (session !== null) session.stop();
}

// ------------------------------------------------------------------ wiring

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
ui.mute.addEventListener('click', () => {
  const mute = !muted();
  ui.mute.setAttribute('aria-pressed', String(mute));
  ui.mute.textContent = mute ? 'Unmute microphone' : 'Mute microphone';
  if (session !== null) session.setMuted(mute);
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
  if (session.sendText(text)) {
    view.addTyped(text);
    ui.textInput.value = '';
  }
});
window.addEventListener('pagehide', stop);
setControls();
if (!audioWorkletSupported()) view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
