// What the talk and monitor pages do when their socket closes: log it, then either say that it
// is reconnecting (VoiceSocket retries by itself), or end quietly, or say why it failed. The
// pages word some of it differently, so each passes its texts; each then does its own cleanup.
import { CloseCode, State } from './protocol.js';
import { closeMessage, errorMessage } from './protocol-texts.js';

// detail: VoiceSocket's close event. ended: the page meant it to end (Stop, monitor.ended).
// lastError: the last fatal `error` message, whose text explains the close better than its code.
// texts: retrying(detail, seconds) and gaveUp(detail) (a retryable close and the last one),
// notConnected (the socket never opened), byCode ({code: text}, before the usual close text).
// Returns {state, message}: CONNECTING (retrying, already shown), STOPPED, or ERROR with
// the message the notice now shows.
export function showClose(view, detail, { ended = false, lastError = null, texts }) {
  view.log('local', `websocket closed (${detail.code})`);
  if (detail.willRetry) {
    view.setState(State.CONNECTING);
    view.notice(texts.retrying(detail, (detail.delayMs / 1000).toFixed(1)), 'warn');
    return { state: State.CONNECTING, message: null };
  }
  if (ended || (detail.code === CloseCode.NORMAL && !lastError)) {
    return { state: State.STOPPED, message: null };
  }
  const message = failureMessage(detail, lastError, texts);
  view.notice(message, 'error');
  return { state: State.ERROR, message };
}

function failureMessage(detail, lastError, texts) {
  if (detail.retriesExhausted) return texts.gaveUp(detail);
  if (lastError) return errorMessage(lastError) || closeMessage(detail.code);
  const special = texts.byCode?.[detail.code];
  if (special) return special;
  if (!detail.opened && detail.code === CloseCode.ABNORMAL) return texts.notConnected;
  return closeMessage(detail.code);
}
