// The talk page: the only module of the page that looks elements up in the document. The
// conversation itself (audio, socket, server messages) is a TalkSession.
import { audioWorkletSupported, UNSUPPORTED_AUDIO_MESSAGE } from './audio-worklet.js';
import { gettext, interpolate } from './i18n.js';
import { MAX_TEXT_MESSAGE_CHARS, State, TurnMode } from './protocol.js';
import { PUSH_TO_TALK_READY_LABEL } from './protocol-texts.js';
import { SessionView, sessionElements } from './session-view.js';
import { TalkSession } from './talk-session.js';

const LEVEL_FLOOR_DB = -60;
// Page settings this browser remembers (speakerphone: 'on'/'off', else the profile's default).
const STORAGE = { mic: 'voice.micDevice', output: 'voice.outputDevice', speakerphone: 'voice.speakerphone' };
// Keyboard shortcuts, when the focus is not in a text field (typing never triggers them).
const SHORTCUTS = { s: 'start', m: 'mute', Escape: 'stop' };

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
  micDevice: $('mic-device'),
  outputDevice: $('output-device'),
  outputField: $('output-device-field'),
  speakerphone: $('speakerphone'),
  talk: $('talk-button'),
  talkHint: $('talk-button-hint'),
  turnMode: $('turn-mode'),
  turnModeField: $('turn-mode-field'),
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
  ui.talk.disabled = !canType;
  ui.turnMode.disabled = !canType;
}

function showLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : LEVEL_FLOOR_DB;
  const level = Math.max(0, Math.min(1, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB));
  const pct = Math.round(level * 100);
  ui.levelBar.style.width = `${pct}%`;
  ui.level.setAttribute('aria-valuenow', String(pct));
}

function showProfile(profile) {
  ui.sessionInfo.textContent = interpolate(gettext('Profile: %(name)s'), { name: profile?.name ?? '—' });
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
    view.notice(gettext('This page cannot use the microphone: open it over https (or on localhost).'), 'error');
    return;
  }
  const options = {
    worklets: { capture: root.dataset.captureWorklet, player: root.dataset.playerWorklet },
    profileId: ui.profile ? ui.profile.value : '',
    muted: muted(),
    micId: ui.micDevice.value,
    outputId: ui.outputDevice.value,
    speakerphone: ui.speakerphone.checked,
    resumeId: root.dataset.resume ?? '',
    draft: root.dataset.draft === '1', // staff trying the profile's unpublished draft
  };
  delete root.dataset.resume; // continued once: the next Start begins a new conversation
  const s = new TalkSession(view, options, {
    onChange: setControls,
    onLevel: showLevel,
    onProfile: showProfile,
    onMicrophone: listDevices,
    onTurnMode: showTurnMode,
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

// ------------------------------------------------------------------ push-to-talk

// The Talk button, its hint and the mode switch, for a mode (the profile's before Start, the
// server's turn_mode after).
function showTurnMode({ mode, canSwitch, holding = false }) {
  const pushToTalk = mode === TurnMode.PUSH_TO_TALK;
  ui.talk.hidden = !pushToTalk;
  ui.talkHint.hidden = !pushToTalk;
  ui.turnModeField.hidden = !canSwitch;
  ui.turnMode.checked = pushToTalk;
  ui.talk.setAttribute('aria-pressed', String(holding));
  ui.talk.textContent = holding ? gettext('Talking… release to send') : gettext('Hold to talk');
  view.setStateLabel(State.READY, pushToTalk ? PUSH_TO_TALK_READY_LABEL : null);
}

function selectedProfile() {
  return ui.profile ? ui.profile.selectedOptions[0] ?? null : null;
}

// Before Start: what the selected profile says (turn mode, speakerphone default).
function showProfileDefaults() {
  const option = selectedProfile();
  if (!option) return;
  showTurnMode({ mode: option.dataset.turnMode, canSwitch: option.dataset.turnSwitch === 'on' });
  const chosen = remembered(STORAGE.speakerphone);
  ui.speakerphone.checked = chosen ? chosen === 'on' : option.dataset.speakerphone === 'on';
}

function press(event) {
  if (session === null || !session.press()) return;
  event?.preventDefault();
}

function release() {
  if (session !== null) session.release();
}

// Hold with a pointer (mouse, finger, pen): captured, so sliding off the button still releases.
function onTalkPointerDown(event) {
  if (event.button !== 0) return;
  ui.talk.setPointerCapture?.(event.pointerId);
  press(event);
}

// The space bar talks while held, unless the focus is where Space means something else (a text
// field, another button, a checkbox, a list): there it keeps its usual meaning.
function spaceTalks(event) {
  if (event.key !== ' ' || event.altKey || event.ctrlKey || event.metaKey) return false;
  if (session === null || !session.pushToTalk) return false;
  const target = event.target;
  if (target === ui.talk) return true;
  return !(target instanceof Element && target.closest('input, select, textarea, button, summary, a, [contenteditable]'));
}

function onSpaceDown(event) {
  if (!spaceTalks(event)) return;
  event.preventDefault(); // no scrolling, no click on the Talk button
  if (!event.repeat) press();
}

function onSpaceUp(event) {
  if (!spaceTalks(event)) return;
  event.preventDefault();
  release();
}

function stop() {
  if (session !== null) session.stop();
}

function toggleMute() {
  const mute = !muted();
  ui.mute.setAttribute('aria-pressed', String(mute));
  ui.mute.textContent = mute ? gettext('Unmute microphone') : gettext('Mute microphone');
  if (session !== null) session.setMuted(mute);
}

// ------------------------------------------------------------------ devices and settings

function remembered(key) {
  try {
    return localStorage.getItem(key) ?? '';
  } catch {
    return ''; // storage blocked: nothing is remembered
  }
}

function remember(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // storage blocked: the choice holds for this page only
  }
}

// Fill a device select (keeping its first, default option), re-selecting the remembered one.
function fillDevices(select, devices, fallbackName, storageKey) {
  const chosen = select.value || remembered(storageKey);
  while (select.options.length > 1) select.remove(1);
  devices.forEach((device, index) => {
    if (!device.deviceId || device.deviceId === 'default') return;
    const name = device.label || interpolate(fallbackName, { n: index + 1 });
    select.add(new Option(name, device.deviceId));
  });
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : '';
}

// Microphones (and speakers, where the page can choose them). Before the first Start the browser
// may hide the names, so the lists are read again once the microphone is open.
async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  let devices;
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  fillDevices(
    ui.micDevice,
    devices.filter((d) => d.kind === 'audioinput'),
    gettext('Microphone %(n)s'),
    STORAGE.mic,
  );
  const canChooseOutput = typeof AudioContext !== 'undefined' && 'setSinkId' in AudioContext.prototype;
  const outputs = devices.filter((d) => d.kind === 'audiooutput');
  ui.outputField.hidden = !canChooseOutput || outputs.length === 0;
  if (canChooseOutput) fillDevices(ui.outputDevice, outputs, gettext('Speaker %(n)s'), STORAGE.output);
}

// ------------------------------------------------------------------ keyboard

function inTextField(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable || target.closest('select, textarea')) return true;
  if (target instanceof HTMLInputElement) {
    return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(target.type);
  }
  return false;
}

function onShortcut(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  if (inTextField(event.target)) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const action = SHORTCUTS[key];
  if (!action) return;
  const button = ui[action];
  if (button.disabled) return;
  event.preventDefault();
  button.click(); // a click: the AudioContext may start from a key press too
}

// ------------------------------------------------------------------ wiring

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
ui.mute.addEventListener('click', toggleMute);
document.addEventListener('keydown', onShortcut);
ui.micDevice.addEventListener('change', () => remember(STORAGE.mic, ui.micDevice.value));
ui.outputDevice.addEventListener('change', () => {
  remember(STORAGE.output, ui.outputDevice.value);
  if (session !== null) session.setOutputDevice(ui.outputDevice.value);
});
ui.speakerphone.addEventListener('change', () => {
  // 'on' or 'off': an explicit choice overrides the profile's default from now on.
  remember(STORAGE.speakerphone, ui.speakerphone.checked ? 'on' : 'off');
  if (session !== null) session.setSpeakerphone(ui.speakerphone.checked);
});
navigator.mediaDevices?.addEventListener?.('devicechange', listDevices);
listDevices();
if (ui.profile) {
  ui.profile.addEventListener('change', () => {
    showProfileDefaults();
    const url = new URL(location.href);
    url.searchParams.set('profile', ui.profile.value);
    history.replaceState(null, '', url);
  });
}
ui.textForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.textInput.value.trim();
  if (!text || session === null || !session.ready) return;
  if (text.length > MAX_TEXT_MESSAGE_CHARS) {
    view.notice(interpolate(gettext('Messages can be at most %(max)s characters.'), { max: MAX_TEXT_MESSAGE_CHARS }), 'warn');
    return;
  }
  if (session.sendText(text)) {
    view.addTyped(text);
    ui.textInput.value = '';
  }
});
ui.talk.addEventListener('pointerdown', onTalkPointerDown);
ui.talk.addEventListener('pointerup', release);
ui.talk.addEventListener('pointercancel', release);
ui.talk.addEventListener('lostpointercapture', release);
ui.talk.addEventListener('contextmenu', (event) => event.preventDefault()); // long press on phones
document.addEventListener('keydown', onSpaceDown);
document.addEventListener('keyup', onSpaceUp);
window.addEventListener('blur', release); // a key-up the page never sees must not keep it held
ui.turnMode.addEventListener('change', () => {
  const mode = ui.turnMode.checked ? TurnMode.PUSH_TO_TALK : TurnMode.VOICE_ACTIVITY;
  if (session === null || !session.setTurnMode(mode)) ui.turnMode.checked = !ui.turnMode.checked;
});
window.addEventListener('pagehide', stop);
showProfileDefaults();
setControls();
if (!audioWorkletSupported()) view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
