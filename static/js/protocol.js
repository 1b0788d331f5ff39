// The browser side of docs/protocol.md (assistant/protocol/ is the Python source).
// Every other module imports message types, close codes, states, side bytes and their texts
// from here: one place only. The audio worklets import it too, so nothing at the top level may
// need a window (no location, document or URL outside a function; gettext falls back to English).
import { gettext, interpolate, ngettext } from './i18n.js';

// PCM16 mono, both ways (the capture and player worklets resample to and from it).
export const SAMPLE_RATE = 24000;

export const VOICE_PATH = '/ws/voice/';
export const MONITOR_PATH = '/ws/monitor/';

// The message types the pages send...
export const ClientMessage = Object.freeze({
  AUDIO_ACK: 'audio.ack',
  INPUT_PRESS: 'input.press',
  INPUT_RELEASE: 'input.release',
  PING: 'ping',
  TURN_MODE_SET: 'turn_mode.set',
  PLAYBACK_INTERRUPTED: 'playback.interrupted',
  SESSION_STOP: 'session.stop',
  TEXT_SEND: 'text.send',
  TOOL_APPROVAL: 'tool.approval',
});

// ...and the ones they act on (a monitor gets copies of the session's, and its own two).
export const ServerMessage = Object.freeze({
  STATE: 'state',
  SESSION_READY: 'session.ready',
  SPEECH_STARTED: 'speech.started',
  PLAYBACK_CLEAR: 'playback.clear',
  AUDIO_START: 'audio.start',
  AUDIO_DONE: 'audio.done',
  TRANSCRIPT_USER_DELTA: 'transcript.user.delta',
  TRANSCRIPT_USER_DONE: 'transcript.user.done',
  TRANSCRIPT_ASSISTANT_DELTA: 'transcript.assistant.delta',
  TRANSCRIPT_ASSISTANT_DONE: 'transcript.assistant.done',
  PROFILE_UPDATED: 'profile.updated',
  TURN_MODE: 'turn_mode',
  ERROR: 'error',
  MONITOR_ATTACHED: 'monitor.attached',
  MONITOR_ENDED: 'monitor.ended',
  QUOTA_WARNING: 'quota.warning',
  CONVERSATION_RESUMED: 'conversation.resumed',
  PROFILE_HANDOVER: 'profile.handover',
  SESSION_ENDING: 'session.ending',
  TOOL_STARTED: 'tool.started',
  TOOL_FINISHED: 'tool.finished',
  TOOL_APPROVAL_REQUEST: 'tool.approval.request',
});

// How the user's turns end (turn_mode.set, turn_mode).
export const TurnMode = Object.freeze({
  VOICE_ACTIVITY: 'voice_activity',
  PUSH_TO_TALK: 'push_to_talk',
});

// A message of one of these types means the session is up: the retry budget starts again.
export const SESSION_UP_MESSAGES = Object.freeze(
  new Set([ServerMessage.SESSION_READY, ServerMessage.MONITOR_ATTACHED]),
);

// text.send: at most this many characters.
export const MAX_TEXT_CHARS = 2000;

// A monitor's binary frames start with one byte saying whose audio follows.
export const MonitorSide = Object.freeze({
  USER: 0x01,
  ASSISTANT: 0x02,
});

// The states of the indicator: the server's (the `state` message) and the page's own (idle
// before Start; connecting, stopped and error around the socket).
export const State = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  READY: 'ready',
  LISTENING: 'listening',
  PROCESSING: 'processing',
  ASSISTANT_SPEAKING: 'assistant_speaking',
  STOPPED: 'stopped',
  ERROR: 'error',
});

export const STATE_LABELS = Object.freeze({
  [State.IDLE]: gettext('Idle — press Start'),
  [State.CONNECTING]: gettext('Connecting…'),
  [State.READY]: gettext('Ready — speak any time'),
  [State.LISTENING]: gettext('Listening…'),
  [State.PROCESSING]: gettext('Thinking…'),
  [State.ASSISTANT_SPEAKING]: gettext('Assistant speaking'),
  [State.STOPPED]: gettext('Stopped'),
  [State.ERROR]: gettext('Error'),
});

// "Ready" in push-to-talk: nothing is heard until the user holds the button.
export const PUSH_TO_TALK_READY_LABEL = gettext('Ready — hold Talk (or the space bar) to speak');

export const CloseCode = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  MESSAGE_TOO_BIG: 1009,
  SERVER_DRAINING: 4001,
  PROTOCOL_VIOLATION: 4400,
  UNAUTHENTICATED: 4401,
  QUOTA_EXCEEDED: 4402,
  FORBIDDEN: 4403,
  IDLE_TIMEOUT: 4408,
  CLIENT_TOO_SLOW: 4413,
  SESSION_REPLACED: 4409,
  TERMINATED: 4410,
  TOO_MANY_SESSIONS: 4429,
  UPSTREAM_UNAVAILABLE: 4502,
  SERVER_BUSY: 4503,
});

// The browser reconnects by itself, with backoff, only after these.
export const RETRYABLE_CLOSE_CODES = Object.freeze(
  new Set([CloseCode.SERVER_DRAINING, CloseCode.SERVER_BUSY]),
);

const CLOSE_MESSAGES = Object.freeze({
  [CloseCode.NORMAL]: gettext('The session ended.'),
  [CloseCode.ABNORMAL]: gettext('The connection to the server was lost.'),
  [CloseCode.MESSAGE_TOO_BIG]: gettext('A message was too large for the server; the session was closed.'),
  [CloseCode.SERVER_DRAINING]: gettext('The server is restarting. Reconnecting…'),
  [CloseCode.PROTOCOL_VIOLATION]: gettext('The session was closed: too many invalid or rapid messages.'),
  [CloseCode.UNAUTHENTICATED]: gettext('You are not logged in (or your login expired). Log in again.'),
  [CloseCode.QUOTA_EXCEEDED]: gettext('You have used up your conversation quota for now.'),
  [CloseCode.FORBIDDEN]: gettext('That assistant profile is not available to you.'),
  [CloseCode.IDLE_TIMEOUT]: gettext('The session was closed after being idle for too long.'),
  [CloseCode.CLIENT_TOO_SLOW]: gettext('Your connection could not keep up with the assistant\'s audio; the session was closed.'),
  [CloseCode.SESSION_REPLACED]: gettext('This session was replaced by a newer one in another tab or device.'),
  [CloseCode.TERMINATED]: gettext('The session was ended by an administrator or reached its maximum length.'),
  [CloseCode.TOO_MANY_SESSIONS]: gettext('You have too many sessions open (or connected too often). Try again later.'),
  [CloseCode.UPSTREAM_UNAVAILABLE]: gettext('The voice service is unavailable right now. Try again in a moment.'),
  [CloseCode.SERVER_BUSY]: gettext('The server is busy. Reconnecting…'),
});

export function closeMessage(code) {
  return CLOSE_MESSAGES[code] ?? interpolate(gettext('The connection closed unexpectedly (code %(code)s).'), { code });
}

// monitor.ended reasons.
const MONITOR_END_MESSAGES = Object.freeze({
  ended: gettext('The session ended.'),
  not_found: gettext('That session is not live (it may have ended already).'),
  unreachable: gettext('The worker holding that session could not be reached.'),
  logout: gettext('You logged out, so monitoring stopped.'),
  forbidden: gettext('You are no longer allowed to monitor sessions.'),
});

export function monitorEndMessage(reason) {
  return MONITOR_END_MESSAGES[reason] ?? interpolate(gettext('The session ended (%(reason)s).'), { reason });
}

// The `error` message's fixed text for each code (assistant/protocol/ ERROR_MESSAGES, the same
// English, checked by tests/test_translations.py), so that it can be shown translated.
const ERROR_TEXTS = Object.freeze({
  bad_json: gettext('The message was not valid JSON.'),
  bad_message: gettext('The message is missing a field or has a field of the wrong type.'),
  unknown_type: gettext('Unknown message type.'),
  message_too_large: gettext('The message is too large.'),
  bad_audio: gettext('Audio must be 16-bit PCM: an even, non-zero number of bytes.'),
  rate_limited: gettext('Too many messages; slow down.'),
  audio_too_fast: gettext('Audio is arriving faster than real time; some was dropped.'),
  not_ready: gettext('The assistant is not connected yet.'),
  profile_forbidden: gettext('That assistant profile is not available to you.'),
  profile_unavailable: gettext('No enabled assistant profile is configured for you.'),
  upstream_unavailable: gettext('The voice service is unavailable. Try again in a moment.'),
  upstream_auth_failed: gettext('The assistant could not sign in to the voice service. An administrator must check its credentials (the server log says what to check).'),
  upstream_lost: gettext('The connection to the voice service was lost.'),
  upstream_error: gettext('The voice service reported an error.'),
  too_many_sessions: gettext('You already have a live session open elsewhere.'),
  session_replaced: gettext('This session was replaced by a newer one in another tab.'),
  terminated: gettext('The session was ended.'),
  idle_timeout: gettext('The session was idle for too long.'),
  session_expired: gettext('The session reached its maximum duration.'),
  server_busy: gettext('The server is busy. Reconnecting shortly.'),
  server_draining: gettext('The server is restarting. Reconnecting.'),
  client_too_slow: gettext('Your connection cannot keep up with the assistant\'s audio.'),
  input_too_short: gettext('Nothing was heard: hold the button while you speak.'),
  push_to_talk_off: gettext('Push-to-talk is not on: just speak.'),
  turn_mode_locked: gettext('This assistant profile does not let you change how turns end.'),
  idle_ended: gettext('The session ended because nobody spoke for a while.'),
  internal_error: gettext('Something went wrong on the server.'),
  quota_exceeded: gettext('You have used up your conversation quota for now.'),
  resume_not_found: gettext('That conversation cannot be continued: it is not one of yours.'),
});

// When a quota resets (an ISO 8601 time from the server), in the page's language.
function resetsText(resetsAt) {
  if (!resetsAt) return '';
  const when = new Date(resetsAt).toLocaleString(document.documentElement.lang || undefined, {
    dateStyle: 'medium',
    timeStyle: 'short',
  });
  return ` ${interpolate(gettext('It resets on %(when)s.'), { when })}`;
}

// quota.warning: how much of which limit is used, and when it resets.
export function quotaWarningMessage(message) {
  const texts = {
    day: gettext('You have used %(percent)s percent of today\'s conversation minutes.'),
    month: gettext('You have used %(percent)s percent of this month\'s conversation minutes.'),
    cost: gettext('You have used %(percent)s percent of this month\'s conversation budget.'),
  };
  const text = texts[message.limit] ?? texts.month;
  return interpolate(text, { percent: message.percent }) + resetsText(message.resets_at);
}

// conversation.resumed: what of the earlier conversation the assistant was given.
export function resumedMessage(message) {
  if (!message.messages) return gettext('Continuing an earlier conversation: it had nothing to carry over.');
  return interpolate(
    ngettext(
      'Continuing: %(count)s earlier message carried over.',
      'Continuing: %(count)s earlier messages carried over.',
      message.messages,
    ),
    { count: message.messages },
  );
}

// What to show for an `error` message: its code's text, in the page's language; the server's own
// text for a code this page does not know.
export function errorMessage(message) {
  const text = ERROR_TEXTS[message?.code] ?? message?.message ?? message?.code ?? '';
  return text + resetsText(message?.resets_at);
}

// Error codes that mean the session carries on: shown as a notice, not as a failure.
export const NON_FATAL_ERRORS = Object.freeze(
  new Set([
    'bad_json',
    'bad_message',
    'unknown_type',
    'message_too_large',
    'bad_audio',
    'rate_limited',
    'audio_too_fast',
    'not_ready',
    'upstream_error',
    'input_too_short',
    'push_to_talk_off',
    'turn_mode_locked',
  ]),
);

// Error codes sent just before the server ends the session normally: the reason is shown, but
// the session stopped rather than failed (assistant/codes.py CLEAN_END_CODES).
export const CLEAN_END_ERRORS = Object.freeze(new Set(['idle_ended']));

// Sent just before a retryable close: the socket reconnects by itself, so not a failure.
export const TRANSIENT_ERRORS = Object.freeze(new Set(['server_busy', 'server_draining']));

// The browser acknowledges the assistant audio it has received about every this many bytes
// (2 s of 24 kHz PCM16); the server keeps a bounded window unacknowledged (docs/protocol.md).
export const AUDIO_ACK_BYTES = 96000;

export const RECONNECT = Object.freeze({
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
