"""A test-set turn's recording: strict checks of the upload, the conversion, the admin inline."""

from __future__ import annotations

import io
import math
import struct
import wave
from array import array
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from assistant.evaluation import runs
from assistant.evaluation.models import TestSet, TestTurn
from assistant.evaluation.recordings import (
    MAX_UPLOAD_BYTES,
    RATE,
    recording_as_wav,
    recording_from_wav,
    recording_seconds,
)
from assistant.evaluation.runs import run_plan, run_request, run_user_turns
from assistant.models import AssistantProfile


def tone(seconds: float, rate: int = RATE, channels: int = 1, width: int = 2) -> bytes:
    """A WAV file of a 440 Hz tone (each channel the same)."""
    count = int(seconds * rate)
    peak = 2 ** (8 * width - 1) - 1
    samples = [int(peak * 0.5 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count)]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        if width == 2:
            frames = array("h", [s for s in samples for _ in range(channels)]).tobytes()
        else:
            frames = b"".join(
                (s & (2 ** (8 * width) - 1)).to_bytes(width, "little", signed=False)
                for s in samples
                for _ in range(channels)
            )
        wav.writeframes(frames)
    return buffer.getvalue()


def rejected(data: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        recording_from_wav(data)
    return str(caught.value.code)


def test_a_mono_24_khz_recording_is_kept_as_it_is() -> None:
    data = tone(1.0)
    pcm = recording_from_wav(data)
    with wave.open(io.BytesIO(data)) as wav:
        assert pcm == wav.readframes(wav.getnframes())
    assert recording_seconds(pcm) == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 2), (44_100, 1), (16_000, 1), (8_000, 2)])
def test_other_rates_and_stereo_become_24_khz_mono(rate: int, channels: int) -> None:
    pcm = recording_from_wav(tone(2.0, rate=rate, channels=channels))
    assert recording_seconds(pcm) == pytest.approx(2.0, abs=0.01)
    samples = array("h", pcm)
    # Still the 440 Hz tone at about half scale: zero crossings ~ 880 per second.
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
    assert crossings == pytest.approx(880 * 2, rel=0.02)
    assert 0.4 * 32767 < max(samples) < 0.55 * 32767


def test_a_stored_recording_reads_back_as_a_wav_file() -> None:
    pcm = recording_from_wav(tone(0.5))
    assert recording_from_wav(recording_as_wav(pcm)) == pcm


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"RIFF....WAVEnot really", "not_wav"),
        (b"ID3\x03 an mp3 file", "not_wav"),
        (b"", "not_wav"),
        (tone(1.0, width=1), "not_pcm16"),
        (tone(1.0, width=3), "not_pcm16"),
        (tone(0.5, channels=3), "channels"),
        (tone(0.5, rate=96_000), "sample_rate"),
        (tone(0.5, rate=4_000), "sample_rate"),
        (tone(0.1), "too_short"),
        (tone(31.0, rate=8_000), "too_long"),
    ],
)
def test_an_unfit_file_is_refused_with_a_stable_code(data: bytes, code: str) -> None:
    assert rejected(data) == code


def test_silence_and_oversized_files_are_refused() -> None:
    silent = io.BytesIO()
    with wave.open(silent, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(RATE * 2))
    assert rejected(silent.getvalue()) == "silent"
    assert rejected(b"RIFF" + struct.pack("<I", MAX_UPLOAD_BYTES) + bytes(MAX_UPLOAD_BYTES)) == (
        "too_large"
    )


def test_the_messages_are_translated() -> None:
    with pytest.raises(ValidationError) as caught:
        recording_from_wav(tone(0.5, channels=3))
    with translation.override("fr"):
        (message,) = caught.value.messages
    assert "3" in message
    assert "mono" in message
    assert message != "The recording must be mono or stereo (it has 3 channels)."


# -- the admin inline and the replay's turns -------------------------------------------------


def staff() -> Client:
    user = User.objects.create_user("staffer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="run_evaluation"))
    client = Client()
    client.force_login(user)
    return client


def set_form(**turn: object) -> dict[str, object]:
    return {
        "name": "spoken",
        "profile": "",
        "description": "",
        "turns-TOTAL_FORMS": "1",
        "turns-INITIAL_FORMS": "0",
        "turns-0-position": "1",
        "turns-0-text": "What is the capital of Italy?",
        **{f"turns-0-{key}": value for key, value in turn.items()},
        "checks-TOTAL_FORMS": "0",
        "checks-INITIAL_FORMS": "0",
    }


@pytest.mark.django_db
def test_a_recording_is_uploaded_in_the_test_sets_inline_and_deleted_with_its_turn() -> None:
    client = staff()
    upload = SimpleUploadedFile("italy.wav", tone(1.5, rate=48_000, channels=2), "audio/wav")
    response = client.post(reverse("admin:evaluation_testset_add"), set_form(recording=upload))
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    turn = TestTurn.objects.get()
    assert recording_seconds(turn.audio) == pytest.approx(1.5, abs=0.01)
    page = client.get(reverse("admin:evaluation_testset_change", args=[turn.test_set_id]))
    assert b"1.5 s" in page.content
    assert b'enctype="multipart/form-data"' in page.content
    listen = reverse("admin:evaluation_testturn_recording", args=[turn.pk])
    assert f'<audio controls preload="none" src="{listen}">'.encode() in page.content
    played = client.get(listen)
    assert played["Content-Type"] == "audio/wav"
    assert recording_from_wav(played.content) == bytes(turn.audio), "what was stored"
    outsider = User.objects.create_user("outsider", password="pw", is_staff=True)
    client.force_login(outsider)
    assert client.get(listen).status_code == HTTPStatus.FORBIDDEN

    # The replay sends it as audio, with the turn's text as its label.
    (group,) = runs.test_set_groups(turn.test_set)
    assert [(t.text, len(t.audio or b"")) for t in group[1]] == [
        ("What is the capital of Italy?", len(turn.audio))
    ]
    profile = AssistantProfile.objects.get(is_default=True)
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, test_set=turn.test_set
    )
    rows = run_plan(run)
    assert [row.test_turn_id for row in rows] == [turn.pk]
    assert run_user_turns(rows)[0].audio == bytes(turn.audio)

    TestSet.objects.get().delete()
    assert not TestTurn.objects.exists(), "the recording went with its turn"
    assert run_user_turns(rows)[0].audio is None, "a deleted recording leaves the text"


@pytest.mark.django_db
def test_an_unfit_upload_is_a_form_error_and_nothing_is_saved() -> None:
    client = staff()
    upload = SimpleUploadedFile("song.mp3", b"ID3\x03 not a wav", "audio/mpeg")
    response = client.post(reverse("admin:evaluation_testset_add"), set_form(recording=upload))
    assert response.status_code == HTTPStatus.OK
    assert b"This is not a WAV file this page can read" in response.content
    assert not TestSet.objects.exists()


@pytest.mark.django_db
def test_a_recording_can_be_removed() -> None:
    client = staff()
    test_set = TestSet.objects.create(name="spoken")
    turn = TestTurn.objects.create(
        test_set=test_set, position=1, text="Hello", audio=recording_from_wav(tone(0.5))
    )
    form = set_form(id=str(turn.pk), test_set=str(test_set.pk), remove_recording="on")
    form["turns-INITIAL_FORMS"] = "1"
    url = reverse("admin:evaluation_testset_change", args=[test_set.pk])
    response = client.post(url, form)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    turn.refresh_from_db()
    assert turn.audio is None
    assert turn.text == "What is the capital of Italy?"


@pytest.mark.django_db
def test_the_report_page_shows_what_each_side_heard() -> None:
    from assistant.evaluation.models import EvaluationRun, RunStatus, RunTurn

    client = staff()
    test_set = TestSet.objects.create(name="spoken")
    TestTurn.objects.create(
        test_set=test_set,
        position=1,
        text="capital of Italy (recorded)",
        audio=recording_from_wav(tone(0.5)),
    )
    profile = AssistantProfile.objects.get(is_default=True)
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, test_set=test_set
    )
    run_plan(run)

    def heard(text: str, transcript: str) -> dict[str, object]:
        return {
            "text": text,
            "tool_calls": [],
            "latency_ms": 900,
            "input_tokens": 10,
            "output_tokens": 3,
            "estimated_cost": 0.0,
            "heard": transcript,
        }

    RunTurn.objects.filter(run=run).update(
        baseline=heard("Rome.", "What is the capital of Italy?"),
        candidate=heard("Paris.", "c'est le capital de l'unmitral"),
    )
    EvaluationRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE, turns_done=1)
    page = client.get(reverse("admin:evaluation_evaluationrun_change", args=[run.pk]))
    content = page.content.decode()
    assert "capital of Italy (recorded)" in content
    assert "(a recording)" in content
    assert "Heard: <q>What is the capital of Italy?</q>" in content
    assert "Heard: <q>c&#x27;est le capital de l&#x27;unmitral</q>" in content
    assert '<td colspan="3" id="heard-changed">1 / 1</td>' in content
    data = client.get(reverse("admin:evaluation_evaluationrun_json", args=[run.pk])).json()
    assert data["turns"][0]["heard_changed"] is True
    assert data["turns"][0]["user"] == "capital of Italy (recorded)"
