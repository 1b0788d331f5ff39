"""Codes the browser sees: close codes, session states, error codes and their fixed text.

Pure (no Django, no Channels, no SDK): the message schema (``assistant/protocol/``), the
relay and the consumers all speak in these.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class CloseCode(IntEnum):
    """Websocket close codes the server uses; 4000-4999 is the application range."""

    NORMAL = 1000
    ABNORMAL = 1006  # never sent: what either side sees when the connection dropped unclosed
    MESSAGE_TOO_BIG = 1009
    SERVER_DRAINING = 4001  # retryable: this worker is shutting down, reconnect elsewhere
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    IDLE_TIMEOUT = 4408
    CLIENT_TOO_SLOW = 4413  # the browser fell too far behind on the assistant's audio
    SESSION_REPLACED = 4409
    TERMINATED = 4410  # ended by an admin, by logout or by the maximum session duration
    TOO_MANY_SESSIONS = 4429
    PROTOCOL_VIOLATION = 4400
    UPSTREAM_UNAVAILABLE = 4502
    SERVER_BUSY = 4503  # retryable: this worker is at capacity
    QUOTA_EXCEEDED = 4402  # the user's usage quota is used up until it resets


#: Close codes after which the browser reconnects by itself, with backoff.
RETRYABLE_CLOSE_CODES = frozenset({CloseCode.SERVER_DRAINING, CloseCode.SERVER_BUSY})


class State(StrEnum):
    """The session states the talk page shows."""

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"
    LISTENING = "listening"
    PROCESSING = "processing"
    ASSISTANT_SPEAKING = "assistant_speaking"
    STOPPED = "stopped"
    ERROR = "error"


class ErrorCode(StrEnum):
    """Stable error codes sent to the browser; the message for each is fixed text."""

    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    MESSAGE_TOO_LARGE = "message_too_large"
    BAD_AUDIO = "bad_audio"
    RATE_LIMITED = "rate_limited"
    AUDIO_TOO_FAST = "audio_too_fast"
    NOT_READY = "not_ready"
    PROFILE_FORBIDDEN = "profile_forbidden"
    PROFILE_UNAVAILABLE = "profile_unavailable"
    DRAFT_FORBIDDEN = "draft_forbidden"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_AUTH_FAILED = "upstream_auth_failed"
    UPSTREAM_LOST = "upstream_lost"
    UPSTREAM_ERROR = "upstream_error"
    TOO_MANY_SESSIONS = "too_many_sessions"
    SESSION_REPLACED = "session_replaced"
    TERMINATED = "terminated"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_EXPIRED = "session_expired"
    SERVER_BUSY = "server_busy"
    SERVER_DRAINING = "server_draining"
    CLIENT_TOO_SLOW = "client_too_slow"
    INPUT_TOO_SHORT = "input_too_short"
    PUSH_TO_TALK_OFF = "push_to_talk_off"
    TURN_MODE_LOCKED = "turn_mode_locked"
    IDLE_ENDED = "idle_ended"
    INTERNAL = "internal_error"
    QUOTA_EXCEEDED = "quota_exceeded"
    RESUME_NOT_FOUND = "resume_not_found"


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.BAD_JSON: "The message was not valid JSON.",
    ErrorCode.BAD_MESSAGE: "The message is missing a field or has a field of the wrong type.",
    ErrorCode.UNKNOWN_TYPE: "Unknown message type.",
    ErrorCode.MESSAGE_TOO_LARGE: "The message is too large.",
    ErrorCode.BAD_AUDIO: "Audio must be 16-bit PCM: an even, non-zero number of bytes.",
    ErrorCode.RATE_LIMITED: "Too many messages; slow down.",
    ErrorCode.AUDIO_TOO_FAST: "Audio is arriving faster than real time; some was dropped.",
    ErrorCode.NOT_READY: "The assistant is not connected yet.",
    ErrorCode.PROFILE_FORBIDDEN: "That assistant profile is not available to you.",
    ErrorCode.PROFILE_UNAVAILABLE: "No enabled assistant profile is configured for you.",
    ErrorCode.DRAFT_FORBIDDEN: "Only staff who may edit assistant profiles can try a draft.",
    ErrorCode.UPSTREAM_UNAVAILABLE: "The voice service is unavailable. Try again in a moment.",
    ErrorCode.UPSTREAM_AUTH_FAILED: (
        "The assistant could not sign in to the voice service. An administrator must check "
        "its credentials (the server log says what to check)."
    ),
    ErrorCode.UPSTREAM_LOST: "The connection to the voice service was lost.",
    ErrorCode.UPSTREAM_ERROR: "The voice service reported an error.",
    ErrorCode.TOO_MANY_SESSIONS: "You already have a live session open elsewhere.",
    ErrorCode.SESSION_REPLACED: "This session was replaced by a newer one in another tab.",
    ErrorCode.TERMINATED: "The session was ended.",
    ErrorCode.IDLE_TIMEOUT: "The session was idle for too long.",
    ErrorCode.SESSION_EXPIRED: "The session reached its maximum duration.",
    ErrorCode.SERVER_BUSY: "The server is busy. Reconnecting shortly.",
    ErrorCode.SERVER_DRAINING: "The server is restarting. Reconnecting.",
    ErrorCode.CLIENT_TOO_SLOW: "Your connection cannot keep up with the assistant's audio.",
    ErrorCode.INPUT_TOO_SHORT: "Nothing was heard: hold the button while you speak.",
    ErrorCode.PUSH_TO_TALK_OFF: "Push-to-talk is not on: just speak.",
    ErrorCode.TURN_MODE_LOCKED: "This assistant profile does not let you change how turns end.",
    ErrorCode.IDLE_ENDED: "The session ended because nobody spoke for a while.",
    ErrorCode.INTERNAL: "Something went wrong on the server.",
    ErrorCode.QUOTA_EXCEEDED: "You have used up your conversation quota for now.",
    ErrorCode.RESUME_NOT_FOUND: "That conversation cannot be continued: it is not one of yours.",
}

#: Codes that end a session normally: the page shows why, but the session stopped, not failed.
CLEAN_END_CODES = frozenset({ErrorCode.IDLE_ENDED})

#: Codes of errors after which the session carries on: the page shows a notice, not a failure.
NON_FATAL_CODES = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.BAD_MESSAGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.BAD_AUDIO,
        ErrorCode.RATE_LIMITED,
        ErrorCode.AUDIO_TOO_FAST,
        ErrorCode.NOT_READY,
        ErrorCode.UPSTREAM_ERROR,
        ErrorCode.INPUT_TOO_SHORT,
        ErrorCode.PUSH_TO_TALK_OFF,
        ErrorCode.TURN_MODE_LOCKED,
    }
)

#: Codes sent just before a retryable close (:data:`RETRYABLE_CLOSE_CODES`): the browser
#: reconnects by itself, so they are not a failure either.
TRANSIENT_CODES = frozenset({ErrorCode.SERVER_BUSY, ErrorCode.SERVER_DRAINING})


class Ending(StrEnum):
    """Every way a call ends; :data:`ENDINGS` says what the browser is told for each.

    Some values are on the wire too: ``session.end`` (channel layer) and the registry row's
    ``end_reason`` carry REPLACED, TERMINATED, LOGOUT and GONE; ``session.ending`` carries
    GOODBYE.
    """

    STOPPED = "stopped"  # the user pressed Stop
    GOODBYE = "goodbye"  # the assistant ended the conversation (its end_conversation tool)
    IDLE_ENDED = "idle_ended"  # the profile's idle handling: nobody spoke after the check-in
    IDLE_TIMEOUT = "idle_timeout"  # no frame from the browser for VOICE_IDLE_TIMEOUT_SECONDS
    EXPIRED = "expired"  # VOICE_MAX_SESSION_SECONDS reached
    QUOTA_EXCEEDED = "quota_exceeded"  # the user's quota is used up (after the running reply)
    REPLACED = "replaced"  # the same user started a call elsewhere (takeover)
    TERMINATED = "terminated"  # an admin's Terminate
    LOGOUT = "logout"  # the user logged out, or the login was found gone
    GONE = "gone"  # the registry row is gone (a newer claim swept it as stale)
    PROFILE_UNAVAILABLE = "profile_unavailable"  # the profile was disabled or deleted
    DRAINING = "draining"  # this worker is shutting down: reconnect elsewhere
    CLIENT_TOO_SLOW = "client_too_slow"  # the browser fell too far behind on audio
    PROTOCOL_VIOLATION = "protocol_violation"  # the browser broke a hard limit
    UPSTREAM_LOST = "upstream_lost"  # Voice Live could not start, or ended under us
    INTERNAL = "internal"  # a bug or an unexpected library error
    BROWSER_CLOSED = "browser_closed"  # the browser closed its socket
    CONNECTION_LOST = "connection_lost"  # the socket dropped (1006)


#: What the browser is told when a call ends: the error (None: none, a plain stop) and the
#: close code. An ending may carry a more precise error of its own (the upstream's, a limit's,
#: the quota's details). The browser's own endings close nothing: its socket is already gone.
ENDINGS: dict[Ending, tuple[ErrorCode | None, CloseCode]] = {
    Ending.STOPPED: (None, CloseCode.NORMAL),
    Ending.GOODBYE: (None, CloseCode.NORMAL),
    Ending.IDLE_ENDED: (ErrorCode.IDLE_ENDED, CloseCode.NORMAL),
    Ending.IDLE_TIMEOUT: (ErrorCode.IDLE_TIMEOUT, CloseCode.IDLE_TIMEOUT),
    Ending.EXPIRED: (ErrorCode.SESSION_EXPIRED, CloseCode.TERMINATED),
    Ending.QUOTA_EXCEEDED: (ErrorCode.QUOTA_EXCEEDED, CloseCode.QUOTA_EXCEEDED),
    Ending.REPLACED: (ErrorCode.SESSION_REPLACED, CloseCode.SESSION_REPLACED),
    Ending.TERMINATED: (ErrorCode.TERMINATED, CloseCode.TERMINATED),
    Ending.LOGOUT: (ErrorCode.TERMINATED, CloseCode.UNAUTHENTICATED),
    Ending.GONE: (ErrorCode.TERMINATED, CloseCode.TERMINATED),
    Ending.PROFILE_UNAVAILABLE: (ErrorCode.PROFILE_UNAVAILABLE, CloseCode.FORBIDDEN),
    Ending.DRAINING: (ErrorCode.SERVER_DRAINING, CloseCode.SERVER_DRAINING),
    Ending.CLIENT_TOO_SLOW: (ErrorCode.CLIENT_TOO_SLOW, CloseCode.CLIENT_TOO_SLOW),
    Ending.PROTOCOL_VIOLATION: (ErrorCode.BAD_MESSAGE, CloseCode.PROTOCOL_VIOLATION),
    Ending.UPSTREAM_LOST: (ErrorCode.UPSTREAM_LOST, CloseCode.UPSTREAM_UNAVAILABLE),
    Ending.INTERNAL: (ErrorCode.INTERNAL, CloseCode.UPSTREAM_UNAVAILABLE),
    Ending.BROWSER_CLOSED: (None, CloseCode.NORMAL),
    Ending.CONNECTION_LOST: (None, CloseCode.NORMAL),
}

#: The endings a registry row or a ``session.end`` message may ask for.
REQUESTED_ENDINGS = frozenset({Ending.REPLACED, Ending.TERMINATED, Ending.LOGOUT, Ending.GONE})


class MonitorEnding(StrEnum):
    """Why a staff monitor stops following a call (``monitor.ended``).

    Every ending of the call itself reaches its monitors as ENDED.
    """

    ENDED = "ended"  # the call ended
    NOT_FOUND = "not_found"  # no such live session
    UNREACHABLE = "unreachable"  # the registry could not record the monitor
    LOGOUT = "logout"  # the monitoring admin logged out
    FORBIDDEN = "forbidden"  # the admin lost staff status or the monitor permission


#: How the monitor's socket closes after it is told why.
MONITOR_ENDINGS: dict[MonitorEnding, CloseCode] = {
    MonitorEnding.ENDED: CloseCode.NORMAL,
    MonitorEnding.NOT_FOUND: CloseCode.NORMAL,
    MonitorEnding.UNREACHABLE: CloseCode.NORMAL,
    MonitorEnding.LOGOUT: CloseCode.UNAUTHENTICATED,
    MonitorEnding.FORBIDDEN: CloseCode.FORBIDDEN,
}


class ClientError(Exception):
    """A problem with what the browser sent; reported as ``{"type": "error", "code": ...}``."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.value)
        self.code = code
