"""Prometheus metrics of one worker process (each Daphne worker exposes its own /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACTIVE_SESSIONS = Gauge("voice_active_sessions", "Live voice sessions held by this worker.")
# What an autoscaler needs besides the live sessions (assistant/live/worker.py sets them as
# functions of the worker's state, read at scrape time: nothing on the session path).
SESSION_CAPACITY = Gauge(
    "voice_session_capacity", "Sessions this worker admits at most (VOICE_MAX_SESSIONS_PER_WORKER)."
)
SESSION_CAPACITY_REMAINING = Gauge(
    "voice_session_capacity_remaining",
    "Sessions this worker would still admit now: capacity minus live sessions and handshakes "
    "in progress; 0 while draining.",
)
WORKER_DRAINING = Gauge("voice_worker_draining", "1 while this worker drains after SIGTERM.")
# The event loop's health (assistant/live/looplag.py): one probe wake-up every 100 ms.
LOOP_LAG = Histogram(
    "voice_event_loop_lag_seconds",
    "How late the worker's event-loop probe woke from a 100 ms sleep, while sessions are live.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LOOP_LAG_MAX = Gauge(
    "voice_event_loop_lag_max_seconds",
    "Largest event-loop lag of the last 10-20 s (0 while no session is live).",
)
SESSIONS_STARTED = Counter("voice_sessions_started_total", "Voice sessions accepted.")
SESSIONS_REFUSED = Counter(
    "voice_sessions_refused_total", "Voice sessions refused at start.", ["reason"]
)
SESSIONS_ENDED = Counter("voice_sessions_ended_total", "Voice sessions ended.", ["reason"])
AUDIO_FRAMES = Counter(
    "voice_audio_frames_total", "Audio frames relayed.", ["direction"]
)  # direction: in (browser -> upstream) or out (upstream -> browser)
AUDIO_BYTES = Counter("voice_audio_bytes_total", "Audio bytes relayed.", ["direction"])
AUDIO_DROPPED = Counter(
    "voice_audio_frames_dropped_total", "Audio frames dropped.", ["reason"]
)  # reason: not_ready, over_rate, upstream_backlog, not_pressed (push-to-talk)
UPSTREAM_CONNECT_SECONDS = Histogram(
    "voice_upstream_connect_seconds",
    "Time to open the Voice Live connection and configure the session.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPSTREAM_ERRORS = Counter(
    "voice_upstream_errors_total", "Upstream failures and error events.", ["kind"]
)
UPSTREAM_ROLLOVERS = Counter(
    "voice_upstream_rollovers_total", "Upstream connections replaced before the session limit."
)
BARGE_INS = Counter("voice_barge_ins_total", "Times a user interrupted the assistant.")
# verdict: backchannel | barge_in; reason: listed | no_words | words | long | no_transcript.
OVERLAPS = Counter(
    "voice_overlaps_total",
    "User speech over a reply, decided as a backchannel (the reply goes on) or a barge-in.",
    ["verdict", "reason"],
)
# Per-turn timings (assistant/voicelive/turn_timing.py), observed once per turn that got a
# reply. ``profile`` is the assistant profile's id: bounded by the profiles an admin creates.
_TURN_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_PART_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
TURN_LATENCY = Histogram(
    "voice_turn_latency_seconds",
    "End of the user's speech (where it ended in the audio) to the first assistant audio of "
    "the reply at the service: the turn latency.",
    ["profile"],
    buckets=_TURN_BUCKETS,
)
TURN_EOT = Histogram(
    "voice_turn_eot_seconds",
    "End of the user's speech to the upstream's speech_stopped: end-of-turn detection.",
    ["profile"],
    buckets=_PART_BUCKETS,
)
TURN_TRANSCRIPTION = Histogram(
    "voice_turn_transcription_seconds",
    "speech_stopped to the user's transcript, when it came before the reply's first audio.",
    ["profile"],
    buckets=_PART_BUCKETS,
)
TURN_FIRST_AUDIO = Histogram(
    "voice_turn_first_audio_seconds",
    "The rest of the turn latency: the model and speech synthesis upstream, to the first audio "
    "(end of turn, transcription and tool rounds excluded).",
    ["profile"],
    buckets=_PART_BUCKETS,
)
TURN_TOOLS = Histogram(
    "voice_turn_tool_seconds",
    "Tool rounds before the reply's first audio, for turns that ran a tool.",
    ["profile"],
    buckets=_PART_BUCKETS,
)
TURN_PLAYED_LATENCY = Histogram(
    "voice_turn_played_latency_seconds",
    "End of the user's speech to the page's report that the reply began playing (includes the "
    "way to the browser, its jitter buffer and the report's way back).",
    ["profile"],
    buckets=_TURN_BUCKETS,
)
TURN_INTERRUPTED = Counter(
    "voice_turns_interrupted_total",
    "Replies the user cut off (barge-in or a typed message) after hearing part of them.",
    ["profile"],
)
CLIENT_ERRORS = Counter("voice_client_errors_total", "Invalid browser messages.", ["code"])
LAYER_SEND_FAILURES = Counter(
    "voice_channel_layer_send_failures_total", "Channel-layer sends that failed.", ["kind"]
)
LAYER_RECEIVE_FAILURES = Counter(
    "voice_channel_layer_receive_failures_total", "Channel-layer receive errors (e.g. Redis down)."
)
MONITOR_DROPS = Counter(
    "voice_monitor_messages_dropped_total", "Messages for live monitors dropped (slow observers)."
)
HISTORY_WRITE_FAILURES = Counter(
    "voice_history_write_failures_total", "History flushes that failed (retried next tick)."
)
HISTORY_DROPPED = Counter(
    "voice_history_dropped_total",
    "History records dropped (over a bound, or retries used up).",
    ["kind"],
)  # kind: turn, batch
TOOL_CALLS = Counter(
    "voice_tool_calls_total",
    "Tool calls by tool and outcome: the runner's (ok, invalid_arguments, error, timeout, "
    "refused, unknown_tool) and the session's (declined, cancelled, too_many_rounds, and "
    "error/timeout when the executor itself failed).",
    ["tool", "outcome"],
)


def count_tool_call(name: str, outcome: str) -> None:
    """One call in ``voice_tool_calls_total`` (a tool's name is cut to 64 characters)."""
    TOOL_CALLS.labels(tool=name[:64], outcome=outcome).inc()


def observe_turn(profile: str, attributes: dict[str, int | bool | str]) -> None:
    """One turn's timings (``TurnTiming.attributes()``) into the turn histograms."""
    parts = (
        (TURN_LATENCY, "voice.turn_latency_ms"),
        (TURN_EOT, "voice.eot_ms"),
        (TURN_TRANSCRIPTION, "voice.transcription_ms"),
        (TURN_FIRST_AUDIO, "voice.first_audio_ms"),
        (TURN_PLAYED_LATENCY, "voice.played_latency_ms"),
    )
    for histogram, key in parts:
        value = attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            histogram.labels(profile=profile).observe(value / 1000)
    tool_ms = attributes.get("voice.tool_ms")
    if isinstance(tool_ms, int) and tool_ms > 0:
        TURN_TOOLS.labels(profile=profile).observe(tool_ms / 1000)
    if attributes.get("voice.interrupted") is True:
        TURN_INTERRUPTED.labels(profile=profile).inc()
