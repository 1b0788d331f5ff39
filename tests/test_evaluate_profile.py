"""``manage.py evaluate_profile`` over real stored conversations and localvoice's models.

The profile's draft says "Always answer in French."; its stored conversations' user turns, or
a test set's, are replayed against the published version and the draft; the JSON report holds
both answers per turn and the set's checks on both sides, and the exit status says whether a
check failed (1) or the arguments or the engine were wrong (2). A test set's recorded turn is
sent as audio, and the report says what each side heard.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import silence, speak, write_wav
from tests.support.processes import PYTHON, REPO, manage
from tests.support.talking import model_database

pytestmark = [pytest.mark.integration, pytest.mark.models]

QUESTIONS = ["Hello, what can you do?", "What is the capital of Italy?"]

#: Two stored conversations of the default profile: one kept its transcript, one did not.
SETUP = f"""
from django.contrib.auth.models import User
from django.utils import timezone
from assistant.history.models import Conversation, Turn
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot
user = User.objects.create_user("replayed-user", first_name="Secretname")
profile = AssistantProfile.objects.get(is_default=True)
for kept, texts in ((True, {QUESTIONS!r}), (False, ["not stored"])):
    conversation = Conversation.objects.create(
        user=user, profile=profile, profile_name=profile.name, transcript_stored=kept
    )
    for seq, text in enumerate(texts):
        Turn.objects.create(conversation=conversation, seq=2 * seq, role="user", text=text,
                            started_at=timezone.now())
        Turn.objects.create(conversation=conversation, seq=2 * seq + 1, role="assistant",
                            text="(recorded answer)", started_at=timezone.now())
draft = profile_snapshot(profile) | {{"instructions": "Always answer in French, only in French."}}
AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
from assistant.evaluation.models import Check, TestSet, TestTurn
french = TestSet.objects.create(name="french", profile=profile)
TestTurn.objects.create(test_set=french, position=0, text="What is the capital of Italy?")
Check.objects.create(test_set=french, kind="phrase_appears", value="la capitale", turn=1)
Check.objects.create(test_set=french, kind="judged", value="The assistant answers in French.")
Check.objects.create(test_set=french, kind="tool_called", value="get_order_status")
smoke = TestSet.objects.create(name="smoke")
TestTurn.objects.create(test_set=smoke, position=0, text="Hello!")
Check.objects.create(test_set=smoke, kind="phrase_absent", value="zzqx")
clock = TestSet.objects.create(name="clock")
TestTurn.objects.create(test_set=clock, position=0, text="What time is it now?")
Check.objects.create(test_set=clock, kind="tool_called", value="get_current_time")
print(profile.pk)
"""


@pytest.fixture(scope="module")
def env(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], int]]:
    logs = tmp_path_factory.mktemp("evaluate")
    with model_database("evaluate", logs, upstream_url=localvoice_models, setup=SETUP) as prepared:
        yield prepared.env, int(prepared.setup_output.strip().splitlines()[-1])


FRENCH_WORDS = {"je", "vous", "la", "le", "est", "de", "capitale", "bonjour"}


def in_french(text: str) -> bool:
    return bool(FRENCH_WORDS & set(text.lower().replace("'", " ").split()))


def evaluate(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "manage.py", "evaluate_profile", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_draft_is_replayed_against_the_published_version(
    env: tuple[dict[str, str], int],
) -> None:
    environment, profile_id = env
    # The local 0.5B model samples (temperature 0.8): it now and then answers a French
    # instruction in English. One more replay before calling the draft's change lost.
    for _attempt in range(2):
        result = evaluate(environment, str(profile_id), "--draft", "--format", "json")
        assert result.returncode == 0, result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        if any(in_french(turn["candidate"]["text"]) for turn in report["turns"]):
            break
    assert report["profile"]["id"] == profile_id
    assert (report["baseline"]["version"], report["baseline"]["draft"]) == (1, False)
    assert (report["candidate"]["version"], report["candidate"]["draft"]) == (1, True)
    assert [turn["user"] for turn in report["turns"]] == QUESTIONS, "kept transcripts only"
    for turn in report["turns"]:
        for side in ("baseline", "candidate"):
            answer = turn[side]
            assert answer["text"].strip(), (side, turn)
            assert answer["latency_ms"] > 0
            assert answer["output_tokens"] > 0
            assert answer["tool_calls"] == []
            assert answer["estimated_cost"] >= 0.0  # at the ModelPrice rows (none: 0)
    summary = report["summary"]
    assert summary["turns"] == len(QUESTIONS)
    assert summary["answers_changed"] >= 1, "the instruction change changes answers"
    assert any(in_french(turn["candidate"]["text"]) for turn in report["turns"]), (
        "the draft answers in French"
    )
    assert summary["baseline"]["empty_answers"] == 0
    assert "Secretname" not in result.stdout
    assert "replayed-user" not in result.stdout, "reports name no user"


def test_the_text_report(env: tuple[dict[str, str], int]) -> None:
    environment, profile_id = env
    started = time.monotonic()
    result = evaluate(environment, str(profile_id), "--against", "1", "--format", "text")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    print(result.stdout, f"wall time: {elapsed:.1f} s for {len(QUESTIONS)} turns x 2", sep="\n")
    lines = result.stdout.splitlines()
    assert lines[0].endswith("version 1 → draft (of version 1)")
    assert lines[2] == f"1. user: {QUESTIONS[0]}"
    assert "answers changed" in lines[-1]


def test_a_test_sets_checks_show_the_change_and_a_failed_check_exits_1(
    env: tuple[dict[str, str], int],
) -> None:
    environment, profile_id = env
    for _attempt in range(2):  # the 0.5B samples: see the test above
        result = evaluate(environment, str(profile_id), "--set", "french", "--format", "json")
        assert result.returncode == 1, result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        if in_french(report["turns"][0]["candidate"]["text"]):
            break
    # The model-judged check's verdict is the local 0.5B model's, which varies (docs): the
    # count is checked against the report, the exact checks one by one below.
    failed = sum(not check["candidate"]["passed"] for check in report["checks"])
    assert f"{failed} check(s) failed on the candidate" in result.stderr
    assert set(report) >= {"profile", "baseline", "candidate", "turns", "summary", "checks"}
    assert report["source"] == {"test_set": "french"}
    (turn,) = report["turns"]
    assert turn["user"] == "What is the capital of Italy?"
    assert set(turn["candidate"]) >= {"text", "tool_calls", "latency_ms"}
    capital, judged, tool = report["checks"]
    print(
        json.dumps(report["checks"], indent=1), turn["baseline"]["text"], turn["candidate"]["text"]
    )
    # The instruction change shows up: the French answer passes, the English one fails.
    assert (capital["label"], capital["baseline"]["passed"], capital["candidate"]["passed"]) == (
        "exact",
        False,
        True,
    )
    assert (judged["label"], judged["judged"]) == ("model-judged", True)
    assert judged["candidate"]["detail"].startswith(("the model says", "unclear verdict"))
    assert (tool["baseline"]["passed"], tool["candidate"]["passed"]) == (False, False)
    assert report["summary"]["checks"]["candidate"]["failed"] >= 1


def test_a_set_whose_checks_pass_exits_0(env: tuple[dict[str, str], int]) -> None:
    environment, profile_id = env
    result = evaluate(environment, str(profile_id), "--set", "smoke", "--format", "text")
    assert result.returncode == 0, result.stderr
    assert "[exact] phrase_absent 'zzqx'" in result.stdout
    assert result.stdout.endswith("0 check(s) failed on the candidate.\n")


def test_a_builtin_tool_runs_in_the_replay(env: tuple[dict[str, str], int]) -> None:
    """The default profile offers the clock: the replay runs it (a dry run) and says so."""
    environment, profile_id = env
    result = evaluate(environment, str(profile_id), "--set", "clock", "--format", "json")
    assert result.returncode == 0, result.stderr
    (turn,) = json.loads(result.stdout)["turns"]
    print(json.dumps(turn, indent=1))
    for side in ("baseline", "candidate"):
        calls = turn[side]["tool_calls"]
        assert {"name": "get_current_time", "arguments": {}, "answered": "ran"} in calls, side
        assert turn[side]["text"].strip(), "answered after the clock's result"


def test_bad_arguments_and_engine_failures_exit_with_status_2(
    env: tuple[dict[str, str], int],
) -> None:
    environment, profile_id = env
    assert evaluate(environment, "no such profile").returncode == 2
    missing_version = evaluate(environment, str(profile_id), "--version", "9")
    assert missing_version.returncode == 2
    assert "no version 9" in missing_version.stderr
    assert evaluate(environment, str(profile_id), "--conversations", "0").returncode == 2
    missing_set = evaluate(environment, str(profile_id), "--set", "nope")
    assert (missing_set.returncode, "no test set 'nope'" in missing_set.stderr) == (2, True)
    both = evaluate(environment, str(profile_id), "--set", "smoke", "--conversations", "1")
    assert both.returncode == 2, "a set or conversations, not both"
    unreachable = evaluate(
        environment | {"AZURE_VOICELIVE_ENDPOINT": "http://127.0.0.1:9"},
        str(profile_id),
        "--set",
        "smoke",
    )
    assert unreachable.returncode == 2
    assert "the replay failed" in unreachable.stderr


#: A test set whose one turn is a recording (espeak-ng), uploaded as the admin's form takes it.
SPOKEN_SET = """
from pathlib import Path
from assistant.evaluation.models import TestSet, TestTurn
from assistant.evaluation.recordings import recording_from_wav
spoken = TestSet.objects.create(name={name!r})
TestTurn.objects.create(test_set=spoken, position=0, text="capital of Italy (recorded)",
                        audio=recording_from_wav(Path({path!r}).read_bytes()))
"""


def test_a_recorded_turn_is_replayed_as_audio_and_what_each_side_heard_is_reported(
    env: tuple[dict[str, str], int], tmp_path: Path
) -> None:
    environment, profile_id = env
    # 16 kHz, padded with silence as a recording would be: converted to 24 kHz on upload.
    wav = write_wav(
        tmp_path / "italy.wav",
        silence(300, 16_000)
        + speak("What is the capital of Italy?", 16_000)
        + silence(500, 16_000),
        16_000,
    )
    manage(environment, "shell", "-c", SPOKEN_SET.format(name="spoken", path=str(wav)))
    result = evaluate(environment, str(profile_id), "--set", "spoken", "--format", "json")
    assert result.returncode == 0, result.stderr
    (turn,) = json.loads(result.stdout)["turns"]
    print(json.dumps(turn, indent=1, ensure_ascii=False))
    assert turn["user"] == "capital of Italy (recorded)", "the set's label, not a transcript"
    for side in ("baseline", "candidate"):
        heard = turn[side]["heard"].lower()
        assert {"capital", "italy"} <= set(heard.replace("?", " ").split()), (side, heard)
        assert turn[side]["text"].strip(), "an answer to what was heard"
        assert turn[side]["latency_ms"] > 0
    assert turn["heard_changed"] is False, "the same recogniser on both sides"
    text = evaluate(environment, str(profile_id), "--set", "spoken", "--format", "text")
    assert text.returncode == 0, text.stderr
    assert "   baseline  heard: " in text.stdout


#: The draft's speech recognition set to French (and back): only the candidate hears in French.
DRAFT_LANGUAGE = """
from assistant.models import AssistantProfile
profile = AssistantProfile.objects.get(is_default=True)
AssistantProfile.objects.filter(pk=profile.pk).update(
    draft=profile.draft | {{"input_transcription_language": {language!r}}}
)
"""


def test_a_speech_recognition_change_in_the_draft_shows_in_what_it_heard(
    env: tuple[dict[str, str], int], tmp_path: Path
) -> None:
    """The draft transcribes in French: the same recording is heard differently by each side."""
    environment, profile_id = env
    wav = write_wav(tmp_path / "italy.wav", speak("What is the capital of Italy?"), 24_000)
    manage(environment, "shell", "-c", SPOKEN_SET.format(name="spoken-fr", path=str(wav)))
    manage(environment, "shell", "-c", DRAFT_LANGUAGE.format(language="fr"))
    try:
        result = evaluate(environment, str(profile_id), "--set", "spoken-fr", "--format", "json")
    finally:
        manage(environment, "shell", "-c", DRAFT_LANGUAGE.format(language=""))
    assert result.returncode == 0, result.stderr
    (turn,) = json.loads(result.stdout)["turns"]
    print(json.dumps(turn, indent=1, ensure_ascii=False))
    baseline, candidate = turn["baseline"]["heard"], turn["candidate"]["heard"]
    assert {"capital", "italy"} <= set(baseline.lower().replace("?", " ").split())
    assert candidate.strip(), "the French recogniser heard something"
    assert candidate.lower() != baseline.lower(), "the draft's recognition shows in the report"
    assert turn["heard_changed"] is True
    assert json.loads(result.stdout)["summary"]["heard_changed"] == 1
