"""What a replay evaluation costs, and what it does to live sessions on the same machine.

One localvoice (the real models) serves both the live sessions and the replay, as in
development. A throwaway SQLite database holds stored conversations (2 user turns each); a run
of the draft against version 1 over the last ``--turns / 2`` of them is queued, and the real
runner (``manage.py run_evaluations --once``) executes it. Meanwhile live sessions speak to the
engine turn after turn (``bench.turn_latency.run_session``: end of speech to first audio).

Modes, interleaved round by round: ``alone`` (live turns, no replay), ``nice`` (the runner at
``--nice 10``, its default), ``normal`` (the runner at ``--nice 0``). Reported per mode: the live
turns' latency; the runner's wall time and CPU (its own rusage) and the engine's CPU during the
replay.

    .venv/bin/python -m bench.replay_cost --turns 20 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.turn_latency import SENTENCES, Turn, cpu_seconds, machine_load, run_session, summarise
from tests.support.localvoice import LocalVoiceProcess
from tests.support.processes import PYTHON, REPO, daphne_env, manage

QUESTIONS = [
    ("What is the capital of Italy?", "And of Spain?"),
    ("How do I boil an egg?", "How long for a soft one?"),
    ("Tell me a joke about cats.", "Another one, please."),
    ("What colour is the sky?", "Why is that?"),
    ("Recommend a book about history.", "Something shorter?"),
]

SETUP = """

from django.contrib.auth.models import User
from django.utils import timezone
from assistant.history.models import Conversation, Turn
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot
pairs = {pairs}
user = User.objects.create_user("bench-user")
profile = AssistantProfile.objects.get(is_default=True)
for pair in pairs:
    conversation = Conversation.objects.create(user=user, profile=profile)
    for seq, text in enumerate(pair):
        Turn.objects.create(conversation=conversation, seq=seq, role="user", text=text,
                            started_at=timezone.now())
draft = profile_snapshot(profile) | {{"instructions": "Always answer in French."}}
AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
"""

QUEUE = """
from assistant.evaluation.models import EvaluationRun
from assistant.evaluation.runs import run_request
from assistant.models import AssistantProfile
EvaluationRun.objects.all().delete()
profile = AssistantProfile.objects.get(is_default=True)
run_request(profile=profile, candidate_version=None, baseline_version=None, conversations={n})
"""

RESULT = """
from assistant.evaluation.models import EvaluationRun
run = EvaluationRun.objects.get()
print(run.status, run.turns_done, run.error_code)
"""


def replay(env: dict[str, str], nice: int, engine_pid: int) -> dict[str, Any]:
    """Run the queued replay in a real runner process; its wall time, CPU and the engine's."""
    engine_before = cpu_seconds(engine_pid)
    started = time.monotonic()
    process = subprocess.Popen(
        [
            str(PYTHON),
            "manage.py",
            "run_evaluations",
            "--once",
            "--nice",
            str(nice),
            "--poll-seconds",
            "0.2",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    return {
        "wall_s": round(wall, 1),
        "runner_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "runner_peak_rss_mb": round(usage.ru_maxrss / 1024),
        "engine_cpu_s": round(cpu_seconds(engine_pid) - engine_before, 1),
        "exit": process.returncode,
    }


def live_turns(endpoint: str, keep_going: threading.Event, minimum: int) -> list[Turn]:
    """Live sessions of 2 turns each, one after another, while ``keep_going`` is set."""
    turns: list[Turn] = []
    index = 0
    while keep_going.is_set() or len(turns) < minimum:
        sentences = [SENTENCES[(index + i) % len(SENTENCES)] for i in range(2)]
        index += 2
        turns += asyncio.run(run_session(endpoint, sentences, 400))
        if not keep_going.is_set() and len(turns) >= minimum:
            break
    return turns


def one_mode(
    mode: str, env: dict[str, str], endpoint: str, engine_pid: int, conversations: int
) -> dict[str, Any]:
    """Live turns during one replay (or alone), and the replay's figures."""
    if mode == "alone":
        keep_going = threading.Event()
        return {"live": live_turns(endpoint, keep_going, minimum=6)}
    manage(env, "shell", "-c", QUEUE.format(n=conversations))
    keep_going = threading.Event()
    keep_going.set()
    collected: dict[str, Any] = {}

    def speak() -> None:
        collected["live"] = live_turns(endpoint, keep_going, minimum=2)

    speaker = threading.Thread(target=speak)
    speaker.start()
    figures = replay(env, 10 if mode == "nice" else 0, engine_pid)
    keep_going.clear()
    speaker.join()
    figures["run"] = manage(env, "shell", "-c", RESULT).strip().splitlines()[-1]
    return collected | {"replay": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="user turns replayed (even)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default="alone,nice,normal")
    args = parser.parse_args()
    conversations = max(1, args.turns // 2)
    pairs = [list(QUESTIONS[i % len(QUESTIONS)]) for i in range(conversations)]
    modes = args.modes.split(",")
    results: dict[str, dict[str, list[Any]]] = {m: {"live": [], "replay": []} for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalVoiceProcess("--threads", "2").start(timeout=300)
        try:
            assert server.process is not None
            env = daphne_env(
                worker_name="bench",
                database_url=f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                redis_url="",
                upstream_url=server.endpoint,
                extra={"VOICE_CONNECT_TIMEOUT": "10"},
            )
            manage(env, "migrate", "--noinput", "-v", "0")
            manage(env, "shell", "-c", SETUP.format(pairs=json.dumps(pairs)))
            print(json.dumps({"machine_load_before": machine_load()}), flush=True)
            for number in range(args.rounds):
                for mode in modes:
                    out = one_mode(mode, env, server.endpoint, server.process.pid, conversations)
                    results[mode]["live"] += out["live"]
                    if "replay" in out:
                        results[mode]["replay"].append(out["replay"])
                    summary = summarise(out["live"])
                    print(
                        f"round {number + 1} {mode}: live "
                        + json.dumps({k: summary[k] for k in ("turns", "p50_ms", "p95_ms")})
                        + (f" replay {json.dumps(out['replay'])}" if "replay" in out else ""),
                        flush=True,
                    )
        finally:
            server.stop()
    for mode in modes:
        summary = summarise(results[mode]["live"])
        line = {k: summary[k] for k in ("turns", "p50_ms", "p95_ms", "max_ms")}
        print(f"== {mode}: live {json.dumps(line)} replays {json.dumps(results[mode]['replay'])}")
    print(json.dumps({"replayed_turns": conversations * 2, "machine_load_after": machine_load()}))


if __name__ == "__main__":
    main()
