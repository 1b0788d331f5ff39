"""A session's timeline for staff: every turn with its timings, and what else happened.

Turns (with the parts of each reply's latency, interruptions, what was heard), tool calls with
their durations and outcomes, errors, upstream rollovers, quota warnings and the end reason, in
the order they happened, plus a chart of each reply's latency split into its parts
(server-rendered SVG: no script, no CDN). Synchronous ORM (an admin view).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from assistant.history.models import Conversation, ConversationEvent, Turn

CHART_WIDTH = 640
ROW_HEIGHT = 18
LABEL_WIDTH = 70
#: The parts of a reply's latency, in order, with their chart colours (the legend's too).
PARTS = (
    ("eot_ms", gettext_lazy("end of turn"), "#79aec8"),
    ("transcription_ms", gettext_lazy("transcription"), "#417690"),
    ("tool_ms", gettext_lazy("tools"), "#c4a000"),
    ("first_audio_ms", gettext_lazy("model to first audio"), "#ba2121"),
)


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a latency bar, in SVG user units."""

    x: float
    width: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class LatencyBar:
    """One reply's latency, split into its parts; ``played_x`` marks when playback began."""

    y: int
    label: str
    segments: list[Segment]
    total_ms: int
    played_x: float | None


@dataclass(slots=True)
class Entry:
    """One line of the timeline."""

    at: dt.datetime
    offset: str
    kind: str
    label: str
    text: str = ""
    turn: Turn | None = None
    duration_ms: int | None = None
    flags: list[str] = field(default_factory=list)


def _offset(start: dt.datetime, at: dt.datetime) -> str:
    """``+m:ss.s`` from the conversation's start."""
    seconds = max(0.0, (at - start).total_seconds())
    minutes, rest = divmod(seconds, 60)
    return f"+{int(minutes)}:{rest:04.1f}"


def latency_chart(turns: list[Turn]) -> dict[str, Any]:
    """The stacked bars of the timed replies, scaled to the slowest (played latency too)."""
    timed = [t for t in turns if t.latency_ms is not None]
    top = max((max(t.latency_ms or 0, t.played_latency_ms or 0) for t in timed), default=0) or 1
    scale = (CHART_WIDTH - LABEL_WIDTH) / top
    bars = []
    for index, turn in enumerate(timed):
        x = float(LABEL_WIDTH)
        segments = []
        for name, label, colour in PARTS:
            value = getattr(turn, name) or 0
            if value:
                segments.append(
                    Segment(round(x, 1), round(value * scale, 1), colour, f"{label}: {value} ms")
                )
                x += value * scale
        played = turn.played_latency_ms
        bars.append(
            LatencyBar(
                y=index * ROW_HEIGHT,
                label=f"#{turn.seq}",
                segments=segments,
                total_ms=turn.latency_ms or 0,
                played_x=round(LABEL_WIDTH + played * scale, 1) if played is not None else None,
            )
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": max(1, len(bars)) * ROW_HEIGHT,
        "maximum_ms": top if timed else 0,
        "legend": [(label, colour) for _, label, colour in PARTS],
    }


def _turn_entry(start: dt.datetime, turn: Turn, show_text: bool) -> Entry:
    flags = []
    if turn.interrupted:
        heard = turn.heard_ms
        flags.append(
            gettext("interrupted after %(ms)s ms") % {"ms": heard}
            if heard is not None
            else gettext("interrupted")
        )
    return Entry(
        at=turn.started_at,
        offset=_offset(start, turn.started_at),
        kind=f"turn-{turn.role}",
        label=str(turn.get_role_display()),
        text=turn.text if show_text else "",
        turn=turn,
        flags=flags,
    )


def _event_entry(start: dt.datetime, event: ConversationEvent) -> Entry:
    return Entry(
        at=event.at,
        offset=_offset(start, event.at),
        kind=f"event-{event.kind}",
        label=str(event.get_kind_display()),
        text=event.detail,
        duration_ms=event.duration_ms,
    )


def timeline(conversation: Conversation, *, show_text: bool) -> dict[str, Any]:
    """Everything the timeline template shows (``show_text``: the turns' words too)."""
    start = conversation.started_at
    # Tool turns repeat their event (name → outcome, with its duration): the event is shown.
    turns = list(conversation.turns.exclude(role=Turn.Role.TOOL).order_by("seq"))
    events = list(conversation.events.order_by("at"))
    entries = [_turn_entry(start, turn, show_text) for turn in turns]
    entries += [_event_entry(start, event) for event in events]
    entries.sort(key=lambda entry: entry.at)
    if conversation.ended_at is not None:
        entries.append(
            Entry(
                at=conversation.ended_at,
                offset=_offset(start, conversation.ended_at),
                kind="end",
                label=gettext("Ended"),
                text=conversation.end_reason,
            )
        )
    replies = [t for t in turns if t.latency_ms is not None]
    latencies = sorted(t.latency_ms for t in replies if t.latency_ms is not None)
    return {
        "conversation": conversation,
        "entries": entries,
        "chart": latency_chart(turns),
        "replies": len(replies),
        "median_ms": latencies[len(latencies) // 2] if latencies else None,
        "slowest_ms": latencies[-1] if latencies else None,
        "interruptions": sum(1 for t in turns if t.interrupted),
        "rollovers": max(0, len(conversation.upstream_session_ids) - 1),
        "show_text": show_text,
    }
