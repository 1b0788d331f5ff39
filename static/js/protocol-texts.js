// What the pages say about the wire contract (protocol.js, generated from the Python): a label
// for each state, a text for each close code, monitor end and error, in the page's language.
// Written by hand; tests/test_protocol_js.py checks that every code and reason has its text.
import { gettext, interpolate, ngettext } from './i18n.js';
import { CloseCode, ERROR_TEXTS, MonitorEnding, State } from './protocol.js';

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

const MONITOR_END_MESSAGES = Object.freeze({
  [MonitorEnding.ENDED]: gettext('The session ended.'),
  [MonitorEnding.NOT_FOUND]: gettext('That session is not live (it may have ended already).'),
  [MonitorEnding.UNREACHABLE]: gettext('The worker holding that session could not be reached.'),
  [MonitorEnding.LOGOUT]: gettext('You logged out, so monitoring stopped.'),
  [MonitorEnding.FORBIDDEN]: gettext('You are no longer allowed to monitor sessions.'),
});

export function monitorEndMessage(reason) {
  return MONITOR_END_MESSAGES[reason] ?? interpolate(gettext('The session ended (%(reason)s).'), { reason });
}

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
