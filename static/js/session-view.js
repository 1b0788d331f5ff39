// What talk.js and monitor.js both show: the state indicator, the live conversation and the
// event log. Page modules own the DOM; this view only touches the elements it is handed.
import { gettext, interpolate } from './i18n.js';
import { ServerMessage, State } from './protocol.js';
import { STATE_LABELS } from './protocol-texts.js';

const LOG_LIMIT = 200;
const SCROLL_SLACK_PX = 48;
// Lines kept in the screen reader's live region (only the newest is new to it).
const ANNOUNCE_LIMIT = 3;
const ROLE_LABELS = { user: gettext('You'), assistant: gettext('Assistant') };

function clock() {
  const d = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// The element ids both pages use for the state, conversation, event log and notices.
export function sessionElements(byId) {
  return {
    state: byId('state'),
    stateLabel: byId('state-label'),
    conversation: byId('conversation'),
    log: byId('log-list'),
    logCount: byId('log-count'),
    notice: byId('notice'),
    announcer: byId('announcer'),
  };
}

export class SessionView {
  // elements: {state, stateLabel?, conversation, log?, logCount?, notice?, announcer?}: the
  // announcer is a polite live region that gets each finished line once (the conversation list
  // itself changes word by word, so it is not a live region); roleLabels overrides
  // "You"/"Assistant" (the monitor shows the username).
  constructor(elements, { roleLabels = {} } = {}) {
    this.el = elements;
    this.roleLabels = { ...ROLE_LABELS, ...roleLabels };
    this.entries = new Map();
    this.serverState = State.IDLE;
    this.playbackActive = false;
    this.shown = null;
    this.logCount = 0;
    this.labels = { ...STATE_LABELS };
    this.setState(State.IDLE);
  }

  // Word one state differently (push-to-talk's "ready"); null restores the usual label.
  setStateLabel(state, label) {
    this.labels[state] = label ?? STATE_LABELS[state];
    this.shown = null;
    this._render();
  }

  // ---------------------------------------------------------------- state

  // The page's own states (idle, connecting, stopped, error) and the server's.
  setState(state) {
    this.serverState = state;
    this._render();
  }

  // While the player is still sounding a reply the server considers done, keep showing it.
  setPlaybackActive(active) {
    this.playbackActive = active;
    this._render();
  }

  _render() {
    const state =
      this.playbackActive && this.serverState === State.READY ? State.ASSISTANT_SPEAKING : this.serverState;
    if (state === this.shown) return;
    this.shown = state;
    this.el.state.dataset.state = state;
    const label = this.el.stateLabel ?? this.el.state;
    label.textContent = this.labels[state] ?? state;
  }

  // ---------------------------------------------------------------- notices

  notice(text, kind = 'info') {
    const box = this.el.notice;
    if (!box) return;
    box.textContent = text;
    box.dataset.kind = kind;
    box.hidden = !text;
  }

  clearNotice() {
    this.notice('');
  }

  // ---------------------------------------------------------------- conversation

  // Apply one server message to the conversation; returns true if it was a conversation message.
  handleConversation(message) {
    switch (message.type) {
      case ServerMessage.SPEECH_STARTED:
        if (message.item_id) this._entry('user', message.item_id, { placeholder: true });
        return true;
      case ServerMessage.TRANSCRIPT_USER_DELTA:
        this._append('user', message.item_id, message.delta);
        return true;
      case ServerMessage.TRANSCRIPT_USER_DONE:
        this._finish('user', message.item_id, message.transcript);
        return true;
      case ServerMessage.TRANSCRIPT_ASSISTANT_DELTA:
        this._append('assistant', message.item_id, message.delta);
        return true;
      case ServerMessage.TRANSCRIPT_ASSISTANT_DONE:
        this._finish('assistant', message.item_id, message.transcript);
        return true;
      default:
        return false;
    }
  }

  // A message typed on this page (the server does not echo it back).
  addTyped(text) {
    const li = this._entry('user', `typed-${Date.now()}-${this.entries.size}`);
    li.classList.add('typed');
    li.classList.remove('partial');
    this._text(li).textContent = text;
    this._scroll();
  }

  // Something said in the page's own voice: "— session ended —" and the like.
  addNote(text) {
    const li = document.createElement('li');
    li.className = 'entry note';
    li.textContent = text;
    this._add(li);
    this.announce(text);
  }

  // A line another module builds (tool-lines.js), added like the others.
  addElement(li) {
    this._add(li);
  }

  // Tell screen readers one finished line (a fresh element, so it is read even if repeated).
  announce(text) {
    const region = this.el.announcer;
    if (!region || !text) return;
    const line = document.createElement('p');
    line.textContent = text;
    region.append(line);
    while (region.childElementCount > ANNOUNCE_LIMIT) region.firstElementChild.remove();
  }

  _entry(role, itemId, { placeholder = false } = {}) {
    const key = `${role}:${itemId}`;
    let li = this.entries.get(key);
    if (li) return li;
    li = document.createElement('li');
    li.className = `entry ${role} partial`;
    li.dataset.itemId = itemId;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = this.roleLabels[role];
    const text = document.createElement('p');
    text.className = 'text';
    if (placeholder) text.dataset.placeholder = 'true';
    text.textContent = placeholder ? '…' : '';
    li.append(who, text);
    this.entries.set(key, li);
    this._add(li);
    return li;
  }

  _text(li) {
    return li.querySelector('.text');
  }

  _append(role, itemId, delta) {
    if (!itemId || typeof delta !== 'string') return;
    const li = this._entry(role, itemId);
    const text = this._text(li);
    if (text.dataset.placeholder) {
      delete text.dataset.placeholder;
      text.textContent = '';
    }
    text.textContent += delta;
    this._scroll();
  }

  _finish(role, itemId, transcript) {
    if (!itemId) return;
    const li = this._entry(role, itemId);
    const text = this._text(li);
    delete text.dataset.placeholder;
    li.classList.remove('partial');
    const clean = (transcript ?? '').trim();
    if (clean) {
      text.textContent = clean;
    } else if (!text.textContent.trim() || text.textContent === '…') {
      if (role === 'assistant') {
        // A reply cut off before its first word: nothing worth a bubble.
        li.remove();
        this.entries.delete(`${role}:${itemId}`);
        return;
      }
      li.classList.add('empty');
      text.textContent = gettext('(nothing recognised)');
    }
    if (!li.classList.contains('empty')) {
      this.announce(interpolate(gettext('%(who)s: %(text)s'), { who: this.roleLabels[role], text: text.textContent }));
    }
    this._scroll();
  }

  _add(li) {
    const list = this.el.conversation;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < SCROLL_SLACK_PX;
    list.append(li);
    if (stick) list.scrollTop = list.scrollHeight;
  }

  _scroll() {
    const list = this.el.conversation;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < SCROLL_SLACK_PX * 4) {
      list.scrollTop = list.scrollHeight;
    }
  }

  // ---------------------------------------------------------------- event log

  // direction: 'in' (from the server), 'out' (to the server) or 'local' (the page itself).
  log(direction, message) {
    const list = this.el.log;
    if (!list) return;
    const li = document.createElement('li');
    li.className = `log-${direction}`;
    const time = document.createElement('time');
    time.textContent = clock();
    const arrow = document.createElement('span');
    arrow.className = 'dir';
    arrow.textContent = direction === 'in' ? '←' : direction === 'out' ? '→' : '•';
    arrow.title =
      direction === 'in' ? gettext('from the server') : direction === 'out' ? gettext('to the server') : gettext('page');
    const body = document.createElement('code');
    body.textContent = typeof message === 'string' ? message : JSON.stringify(message);
    li.append(time, ' ', arrow, ' ', body);
    list.append(li);
    while (list.childElementCount > LOG_LIMIT) list.firstElementChild.remove();
    this.logCount += 1;
    if (this.el.logCount) this.el.logCount.textContent = String(this.logCount);
    const box = list.parentElement;
    if (box) box.scrollTop = box.scrollHeight;
  }
}
