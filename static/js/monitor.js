// The monitor page: follow someone's live session (state, transcripts and, if enabled, audio).
import { audioWorkletSupported, registerWorklets, UNSUPPORTED_AUDIO_MESSAGE } from './audio-worklet.js';
import { showClose } from './close-notice.js';
import { gettext, interpolate } from './i18n.js';
import { AssistantPlayback } from './playback.js';
import { CloseCode, MONITOR_PATH, MonitorSide, ServerMessage, State } from './protocol.js';
import { closeMessage, errorMessage, monitorEndMessage } from './protocol-texts.js';
import { SessionView, sessionElements } from './session-view.js';
import { ToolLines } from './tool-lines.js';
import { VoiceSocket, socketUrl } from './voice-socket.js';

// How this page words a close (close-notice.js). After the last retry it shows the close's own
// text, as it always did.
const CLOSE_TEXTS = {
  retrying: (detail, seconds) =>
    `${closeMessage(detail.code)} ${interpolate(gettext('Trying again in %(seconds)s s.'), { seconds })}`,
  gaveUp: (detail) => closeMessage(detail.code),
  notConnected: gettext('Could not connect to the server (reload the page to log in again).'),
  byCode: { [CloseCode.FORBIDDEN]: gettext('You do not have permission to monitor sessions.') },
};

const $ = (id) => document.getElementById(id);
const root = $('monitor');
const sessionId = root.dataset.sessionId;
const audioEnabled = root.dataset.monitorAudio === 'true';
const ui = {
  user: $('monitor-user'),
  profile: $('monitor-profile'),
  listen: $('listen'),
  muteUser: $('mute-user'),
  muteAssistant: $('mute-assistant'),
};
const view = new SessionView(sessionElements($), { roleLabels: { user: gettext('User') } });
const tools = new ToolLines(view); // read-only: no approval buttons

let audio = null; // {context, user, assistant, gains} once Listen was pressed
let ended = false;

// ------------------------------------------------------------------ audio (optional)

async function listen() {
  if (audio !== null) return;
  if (!audioWorkletSupported()) {
    view.notice(UNSUPPORTED_AUDIO_MESSAGE, 'error');
    return;
  }
  const context = new AudioContext({ latencyHint: 'playback' }); // in the click handler
  const resumed = context.resume();
  ui.listen.disabled = true;
  try {
    await resumed;
    await registerWorklets(context, root.dataset.playerWorklet);
  } catch (error) {
    view.notice(
      interpolate(gettext('The audio engine could not start (%(error)s).'), { error: error?.message ?? error }),
      'error',
    );
    context.close().catch(() => {});
    ui.listen.disabled = false;
    return;
  }
  const gain = (button) => {
    const node = context.createGain();
    node.gain.value = button.getAttribute('aria-pressed') === 'true' ? 0 : 1;
    node.connect(context.destination);
    return node;
  };
  const gains = { user: gain(ui.muteUser), assistant: gain(ui.muteAssistant) };
  const onError = () => view.notice(gettext('The audio engine stopped working; reload to listen again.'), 'error');
  audio = {
    context,
    gains,
    // The same player as the talk page; the user's side simply never has item ids.
    user: new AssistantPlayback(context, gains.user, { onError }),
    assistant: new AssistantPlayback(context, gains.assistant, {
      onActive: (active) => view.setPlaybackActive(active),
      onError,
    }),
  };
  ui.listen.textContent = gettext('Listening');
  ui.muteUser.disabled = false;
  ui.muteAssistant.disabled = false;
}

function toggleMute(button, side) {
  const muted = button.getAttribute('aria-pressed') !== 'true';
  button.setAttribute('aria-pressed', String(muted));
  const labels = {
    user: [gettext('Mute user'), gettext('Unmute user')],
    assistant: [gettext('Mute assistant'), gettext('Unmute assistant')],
  };
  button.textContent = labels[side][muted ? 1 : 0];
  if (audio) audio.gains[side].gain.setTargetAtTime(muted ? 0 : 1, audio.context.currentTime, 0.01);
}

function onAudio(buffer) {
  if (audio === null || buffer.byteLength < 3) return;
  const side = new Uint8Array(buffer, 0, 1)[0];
  // Copy past the side byte: an Int16Array view needs an even byte offset.
  const pcm = buffer.slice(1);
  if (side === MonitorSide.USER) audio.user.audio(pcm);
  else if (side === MonitorSide.ASSISTANT) audio.assistant.audio(pcm);
}

// ------------------------------------------------------------------ socket

function onMessage(message) {
  view.log('in', message);
  switch (message.type) {
    case ServerMessage.MONITOR_ATTACHED:
      ui.user.textContent = message.username ?? '—';
      ui.profile.textContent = message.profile || '—';
      if (message.state) view.setState(message.state);
      view.clearNotice();
      break;
    case ServerMessage.MONITOR_ENDED:
      ended = true;
      view.notice(monitorEndMessage(message.reason), 'info');
      view.addNote(gettext('Session ended.'));
      view.setState(State.STOPPED);
      break;
    case ServerMessage.STATE:
      view.setState(message.state);
      break;
    case ServerMessage.PROFILE_UPDATED:
    case ServerMessage.PROFILE_HANDOVER:
      ui.profile.textContent = message.profile?.name ?? '—';
      break;
    case ServerMessage.ERROR:
      view.notice(interpolate(gettext('The session reported: %(message)s'), { message: errorMessage(message) }), 'warn');
      break;
    default:
      break;
  }
  view.handleConversation(message);
  tools.handle(message);
  if (audio !== null) audio.assistant.handle(message); // read-only: nothing is sent back
}

function onClose(detail) {
  const { state } = showClose(view, detail, { ended, texts: CLOSE_TEXTS });
  if (audio !== null) audio.assistant.interrupt();
  if (state !== State.CONNECTING) view.setState(state);
}

const socket = new VoiceSocket(() => socketUrl(`${MONITOR_PATH}${encodeURIComponent(sessionId)}/`));
socket.addEventListener('message', (event) => onMessage(event.detail));
socket.addEventListener('audio', (event) => onAudio(event.detail));
socket.addEventListener('open', () => view.log('local', 'websocket open'));
socket.addEventListener('close', (event) => onClose(event.detail));

if (audioEnabled && ui.listen) {
  ui.listen.addEventListener('click', listen);
  ui.muteUser.addEventListener('click', () => toggleMute(ui.muteUser, 'user'));
  ui.muteAssistant.addEventListener('click', () => toggleMute(ui.muteAssistant, 'assistant'));
}
view.setState(State.CONNECTING);
socket.connect();
window.addEventListener('pagehide', () => socket.stop());
