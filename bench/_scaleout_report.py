"""What a scale-out run showed: every frame by worker, phase and fate; the drained sessions.

Phases (by a frame's scheduled send time): ``before`` the SIGTERM; ``storm`` from it until the
last drained session is ready again on the other worker, plus a second; ``after``. A frame is
*received*, *late* (back more than the deadline after its scheduled time), *cut* (sent on a
connection that the drain closed while the frame was in flight: the page loses those too, a
few per session) or *lost* (not back, on a connection that stayed up: never expected).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._metrics import lag_between
from bench._reconnect import RETRYABLE, Browser
from tests.support.stats import percentile

PHASES = ("before", "storm", "after")


@dataclass
class Tally:
    """Frames of one group of sessions in one phase."""

    sent: int = 0
    received: int = 0
    late: int = 0
    cut: int = 0
    lost: int = 0
    latencies: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The figures, latencies summarised (ms)."""
        lat = self.latencies
        return {
            "sent": self.sent,
            "received": self.received,
            "late": self.late,
            "cut": self.cut,
            "lost": self.lost,
            "p50": round(percentile(lat, 50), 2) if lat else math.nan,
            "p99": round(percentile(lat, 99), 2) if lat else math.nan,
            "max": round(max(lat), 1) if lat else math.nan,
        }


@dataclass
class Timeline:
    """The run's moments (``time.monotonic()``) and frame geometry."""

    t0: float
    period: float
    window_start: int  # first measured frame
    drain_at: float
    back_at: float = math.nan  # the last drained session ready again


def tally_frames(
    browsers: list[Browser], homes: dict[str, str], tl: Timeline, deadline_ms: float
) -> dict[str, dict[str, Tally]]:
    """``{home worker: {phase: Tally}}`` over the measured window."""
    out: dict[str, dict[str, Tally]] = {}
    storm_end = (tl.back_at if not math.isnan(tl.back_at) else tl.drain_at) + 1.0
    for b in browsers:
        phases = out.setdefault(homes.get(b.username, "?"), {p: Tally() for p in PHASES})
        for seq in range(tl.window_start, b.total_frames):
            k = b.sent_on[seq]
            if k < 0:
                continue
            sched = tl.t0 + seq * tl.period
            phase = "before" if sched < tl.drain_at else "storm" if sched < storm_end else "after"
            t = phases[phase]
            t.sent += 1
            ms = b.latency_ms[seq]
            if not math.isnan(ms):
                t.received += 1
                t.latencies.append(ms)
                t.late += ms > deadline_ms
                continue
            conn = b.conns[k]
            closed = conn.closed_at
            if (
                conn.close_code in RETRYABLE
                and closed is not None
                and closed <= sched + deadline_ms / 1000.0 + 1.0
            ):
                t.cut += 1  # in flight when the worker closed the socket
            else:
                t.lost += 1
    return out


@dataclass
class Drained:
    """What happened to the sessions of the drained worker."""

    sessions: int = 0
    first_close: Counter[str] = field(default_factory=Counter)  # "code error" of the first close
    reconnected: int = 0
    final_workers: Counter[str] = field(default_factory=Counter)
    attempts: list[int] = field(default_factory=list)  # handshakes until ready again
    gap_ms: list[float] = field(default_factory=list)  # first close -> ready again
    close_after_sigterm_ms: list[float] = field(default_factory=list)
    gave_up: int = 0
    ended_otherwise: int = 0  # closed for good before the run's end: the page would stop

    def row(self) -> dict[str, Any]:
        """The figures (ms), for the report and the JSON line."""
        row = asdict(self)
        for key in ("attempts", "gap_ms", "close_after_sigterm_ms"):
            values = row.pop(key)
            row[key] = {
                "p50": round(percentile(values, 50), 1) if values else math.nan,
                "p95": round(percentile(values, 95), 1) if values else math.nan,
                "max": round(max(values), 1) if values else math.nan,
            }
        row["first_close"] = dict(self.first_close)
        row["final_workers"] = dict(self.final_workers)
        return row


def drained_sessions(
    browsers: list[Browser],
    homes: dict[str, str],
    finals: dict[str, str],
    drained: str,
    drain_at: float,
    stop_at: float,
) -> tuple[Drained, float]:
    """The drained worker's sessions, and when the last of them was ready again (or nan)."""
    d = Drained()
    back_at = math.nan
    for b in browsers:
        live = live_at(b, drain_at)
        if homes.get(b.username) != drained or live is None:
            continue
        d.sessions += 1
        closing = b.conns[live]  # the connection the drain closed
        d.first_close[f"{closing.close_code} {closing.error_code or '-'}"] += 1
        if closing.closed_at is not None:
            d.close_after_sigterm_ms.append(1000 * (closing.closed_at - drain_at))
        later = enumerate(b.conns[live + 1 :], 1)
        again = next((n for n, c in later if c.ready_at is not None), None)
        if again is not None and closing.closed_at is not None:
            ready = b.conns[live + again].ready_at
            assert ready is not None
            d.reconnected += 1
            d.attempts.append(again)
            d.gap_ms.append(1000 * (ready - closing.closed_at))
            back_at = ready if math.isnan(back_at) else max(back_at, ready)
        d.final_workers[finals.get(b.username, "none")] += 1
        d.gave_up += b.gave_up
        d.ended_otherwise += ended_early(b, stop_at)
    return d, back_at


def live_at(b: Browser, moment: float) -> int | None:
    """The index of the browser's connection that was ready at ``moment``, if any."""
    for i, c in enumerate(b.conns):
        if c.ready_at is not None and c.ready_at <= moment and (c.closed_at or math.inf) > moment:
            return i
    return None


def initial_refusals(browsers: list[Browser]) -> Counter[str]:
    """Closes before each browser's first ``session.ready`` (e.g. 4503 while connecting)."""
    out: Counter[str] = Counter()
    for b in browsers:
        for c in b.conns:
            if c.ready_at is not None:
                break
            out[f"{c.close_code} {c.error_code or '-'}"] += 1
    return out


def ended_early(b: Browser, stop_at: float) -> bool:
    """True if the browser's last connection closed before the run's end (a lost session)."""
    last = b.conns[-1] if b.conns else None
    return last is None or (last.closed_at is not None and last.closed_at < stop_at)


def survivors_disturbed(browsers: list[Browser], homes: dict[str, str], survivor: str) -> int:
    """Sessions of the surviving worker that connected again once ready (expected: 0)."""
    disturbed = 0
    for b in browsers:
        if homes.get(b.username) != survivor:
            continue
        first = next((i for i, c in enumerate(b.conns) if c.ready_at is not None), None)
        if first is not None and first < len(b.conns) - 1:
            disturbed += 1
    return disturbed


def verdicts(
    tallies: dict[str, dict[str, Tally]],
    d: Drained,
    survivor: str,
    exit_code: int | None,
    *,
    survivors_reconnected: int,
    survivors_ended: int,
) -> list[tuple[bool, str]]:
    """The checks of the run: (passed, what)."""
    own = tallies.get(survivor, {})
    late = sum(t.late for t in own.values())
    lost_own = sum(t.lost for t in own.values())
    lost = sum(t.lost for phases in tallies.values() for t in phases.values())
    draining = "4001 server_draining"
    return [
        (
            late == 0 and lost_own == 0 and survivors_reconnected == 0,
            f"{survivor}'s own sessions: {late} frames late, {lost_own} lost, "
            f"{survivors_reconnected} sessions reconnected",
        ),
        (
            d.sessions > 0 and d.first_close.get(draining, 0) == d.sessions,
            f"drained sessions closed with 4001 server_draining: "
            f"{d.first_close.get(draining, 0)} of {d.sessions} ({dict(d.first_close)})",
        ),
        (
            d.reconnected == d.sessions and d.final_workers.get(survivor, 0) == d.sessions,
            f"drained sessions back on {survivor}: {d.final_workers.get(survivor, 0)} of "
            f"{d.sessions} (reconnected {d.reconnected}, gave up {d.gave_up})",
        ),
        (
            lost == 0 and d.ended_otherwise == 0 and survivors_ended == 0,
            f"nothing lost: {lost} frames lost on live connections, "
            f"{d.ended_otherwise + survivors_ended} sessions ended before the run did",
        ),
        (exit_code == 0, f"the drained worker exited with {exit_code}"),
    ]


def lines(tallies: dict[str, dict[str, Tally]]) -> list[str]:
    """One line per home worker and phase."""
    out = []
    for worker, phases in sorted(tallies.items()):
        for phase in PHASES:
            r = phases[phase].row()
            out.append(
                f"  {worker} {phase:6} sent={r['sent']:6d} recv={r['received']:6d} "
                f"late={r['late']:5d} cut={r['cut']:4d} lost={r['lost']:4d} "
                f"p50={r['p50']:7.2f} p99={r['p99']:8.2f} max={r['max']:8.1f}"
            )
    return out


def timeline_text(b: Browser, origin: float) -> str:
    """A browser's connections, times relative to ``origin`` (the SIGTERM), for the report."""
    parts = []
    for i, c in enumerate(b.conns):
        ready = f" ready {c.ready_at - origin:+.2f}" if c.ready_at is not None else ""
        closed = f" closed {c.closed_at - origin:+.2f}" if c.closed_at is not None else ""
        why = f" {c.close_code} {c.error_code}".rstrip() if c.closed_at is not None else ""
        parts.append(f"#{i} opened {c.opened - origin:+.2f}{ready}{closed}{why}")
    return f"{b.username}: " + "; ".join(parts)


def report(result: dict[str, Any], args: argparse.Namespace, logs: Path) -> bool:
    """Print the run; True when every check passed."""
    tl, d, marks, exits = result["timeline"], result["drained"], result["marks"], result["exit"]
    print(f"# sessions at the start {result['homes']}, at the end {result['finals']}")
    refused = initial_refusals(result["browsers"])
    if refused:
        print(
            f"# closes before the first session.ready (retried as the page does): {dict(refused)}"
        )
    exited = exits.get("exited")
    print(
        f"# SIGTERM to A at +{tl.drain_at - marks['start']['t']:.1f} s of the window; A exited "
        + (f"{exited - tl.drain_at:.2f} s later" if exited else "not yet")
        + f" (code {result['exit_code']}); last drained session ready again "
        f"{(tl.back_at - tl.drain_at):.2f} s after the SIGTERM"
    )
    print("# frames by the worker the session started on (cut: in flight when its socket closed)")
    print("\n".join(lines(result["tallies"])))
    print(f"# drained sessions: {json.dumps(d.row())}")
    slowest = max(
        (b for b in result["browsers"] if result["homes_by_user"].get(b.username) == "A"),
        key=lambda b: len(b.conns),
        default=None,
    )
    if slowest is not None:
        print(f"# e.g. (s after the SIGTERM) {timeline_text(slowest, tl.drain_at)}")
    spans = [("start", "drain"), ("drain", "end")]
    for worker in ("A", "B"):
        for a, b in spans:
            lag = lag_between(marks[a][worker], marks[b][worker]) if marks[b][worker] else None
            text = lag.text() if lag else "n/a (gone)"
            print(f"# loop lag {worker} {a}->{b}: {text}")
    for a, b in spans:
        span = marks[b]["t"] - marks[a]["t"]
        after = marks[b]["cpu"]
        cores = {
            k: round((after[k] - v) / span, 2) for k, v in marks[a]["cpu"].items() if k in after
        }
        print(f"# cores {a}->{b}: {cores}")
    print(f"# live sessions by the scale rule's query: {[m['live'] for m in marks.values()]}")
    stalls = {
        name: (logs / f"daphne-{name}.log").read_text(errors="replace").count("event loop stalled")
        for name in ("A", "B")
    }
    print(f"# stall warnings in the workers' logs: {stalls}")
    browsers, homes = result["browsers"], result["homes_by_user"]
    checks = verdicts(
        result["tallies"],
        d,
        "B",
        result["exit_code"],
        survivors_reconnected=survivors_disturbed(browsers, homes, "B"),
        survivors_ended=sum(
            ended_early(b, exits["stop"]) for b in browsers if homes.get(b.username) == "B"
        ),
    )
    for passed, what in checks:
        print(f"{'PASS' if passed else 'FAIL'} {what}")
    if args.out:
        row = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "args": {k: str(v) for k, v in vars(args).items()},
            "drained": d.row(),
            "tallies": {
                w: {p: t.row() for p, t in phases.items()}
                for w, phases in result["tallies"].items()
            },
            "live": [m["live"] for m in marks.values()],
            "stall_warnings": stalls,
            "checks": [[p, w] for p, w in checks],
        }
        with args.out.open("a") as out:
            out.write(json.dumps(row, default=str) + "\n")
    return all(passed for passed, _ in checks)
