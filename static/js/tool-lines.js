// Tool calls as lines of the conversation (talk and monitor pages): a call started, how it
// ended, and approval requests. On the talk page an approval line has Approve and Decline
// buttons (onAnswer sends tool.approval); the monitor only shows what happens.
import { gettext, interpolate } from './i18n.js';
import { ServerMessage } from './protocol.js';

const OUTCOME_LABELS = {
  ok: gettext('done'),
  declined: gettext('declined'),
  cancelled: gettext('cancelled'),
  timeout: gettext('timed out'),
  refused: gettext('refused'),
  invalid_arguments: gettext('invalid arguments'),
  unknown_tool: gettext('unknown tool'),
  too_many_rounds: gettext('too many calls'),
  error: gettext('failed'),
};

export class ToolLines {
  // view: the page's SessionView; onAnswer(callId, approved): the talk page's answer, or null.
  constructor(view, { onAnswer = null } = {}) {
    this.view = view;
    this.onAnswer = onAnswer;
    this.lines = new Map();
  }

  // Apply one server message; true if it was about a tool call.
  handle(message) {
    switch (message.type) {
      case ServerMessage.TOOL_STARTED:
        this._status(message, interpolate(gettext('%(name)s(%(arguments)s): running…'), message), 'running');
        return true;
      case ServerMessage.TOOL_APPROVAL_REQUEST:
        this._askApproval(message);
        return true;
      case ServerMessage.TOOL_FINISHED: {
        const outcome = OUTCOME_LABELS[message.outcome] ?? message.outcome;
        const text = message.summary
          ? interpolate(gettext('%(name)s: %(outcome)s — %(summary)s'), { ...message, outcome })
          : interpolate(gettext('%(name)s: %(outcome)s'), { name: message.name, outcome });
        const li = this._status(message, text, message.outcome);
        this._closeApproval(li);
        this.view.announce(text);
        return true;
      }
      default:
        return false;
    }
  }

  _line(message) {
    let li = this.lines.get(message.call_id);
    if (li) return li;
    li = document.createElement('li');
    li.className = 'entry tool';
    li.dataset.callId = message.call_id;
    li.dataset.tool = message.name;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = gettext('Tool');
    const text = document.createElement('p');
    text.className = 'text';
    li.append(who, text);
    this.lines.set(message.call_id, li);
    this.view.addElement(li);
    return li;
  }

  _status(message, text, outcome) {
    const li = this._line(message);
    li.dataset.outcome = outcome;
    li.querySelector('.text').textContent = text;
    return li;
  }

  _askApproval(message) {
    const question = interpolate(
      gettext('Allow %(name)s(%(arguments)s)? Answer within %(seconds)s s, or say yes or no.'),
      { name: message.name, arguments: message.arguments, seconds: message.timeout_s },
    );
    const li = this._status(message, question, 'approval');
    this.view.announce(question);
    if (!this.onAnswer) return;
    const buttons = document.createElement('div');
    buttons.className = 'tool-approval';
    for (const [label, approved] of [
      [gettext('Approve'), true],
      [gettext('Decline'), false],
    ]) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = approved ? 'button primary' : 'button';
      button.textContent = label;
      button.addEventListener('click', () => {
        this._closeApproval(li);
        this.onAnswer(message.call_id, approved);
      });
      buttons.append(button);
    }
    li.append(buttons);
    buttons.querySelector('button').focus();
  }

  _closeApproval(li) {
    const buttons = li.querySelector('.tool-approval');
    if (buttons) buttons.remove();
  }
}
