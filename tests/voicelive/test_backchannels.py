"""The backchannel decision (pure): words, the admin's lists, and one window's verdicts."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.voicelive.backchannels import (
    BACKCHANNEL_MAX_MS,
    DEFAULT_BACKCHANNELS,
    EVENT_LAG_SLACK_MS,
    TRANSCRIPT_WAIT_MS,
    BackchannelListError,
    ListError,
    Verdict,
    Window,
    enabled,
    parse_lists,
    session_vocabulary,
    vocabulary_for,
    words,
)
from tests.voicelive.test_session_request import BASE

VOCABULARY = vocabulary_for(parse_lists(DEFAULT_BACKCHANNELS), "en-US")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mm-hmm.", ["mm", "hmm"]),
        ("Uh huh!", ["uh", "huh"]),
        ("Mmmm...", ["mm"]),
        ("[cough] (laughs) *sighs*", []),
        ("D’accord, c'est ça.", ["d'accord", "c'est", "ça"]),
        ("Wait, stop!", ["wait", "stop"]),
    ],
)
def test_words_are_compared_lowercase_without_punctuation_or_annotations(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_lists_are_per_language_and_the_transcription_language_picks_them() -> None:
    lists = parse_lists("en: mhm, uh-huh\n\nfr: ouais, d'accord\n")
    assert lists == {"en": {"mhm", "uh", "huh"}, "fr": {"ouais", "d'accord"}}
    assert vocabulary_for(lists, "fr-FR") == {"ouais", "d'accord"}
    assert vocabulary_for(lists, "en,fr") == {"mhm", "uh", "huh", "ouais", "d'accord"}
    assert vocabulary_for(lists, "") == vocabulary_for(lists, "en,fr")  # detected: every list
    assert vocabulary_for(lists, "de-DE") == frozenset()


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("en mhm", ListError.BAD_LINE, 1),
        ("en: mhm\nfr: ,", ListError.EMPTY_LIST, 2),
        ("en: mhm\nen: yeah", ListError.DUPLICATE_LANGUAGE, 2),
        ("en: " + "mhm, " * 1000, ListError.TOO_LONG, 1),
    ],
)
def test_a_bad_list_names_its_error_and_line(text: str, code: ListError, line: int) -> None:
    with pytest.raises(BackchannelListError) as raised:
        parse_lists(text)
    assert (raised.value.code, raised.value.line) == (code, line)


def test_a_session_whose_list_does_not_parse_uses_the_defaults() -> None:
    config = dataclasses.replace(BASE, backchannels=True, backchannel_words="nonsense")
    assert session_vocabulary(config) == VOCABULARY


def test_the_switch_needs_barge_in_a_transcript_and_voice_turns() -> None:
    on = dataclasses.replace(BASE, backchannels=True)
    assert enabled(on)
    assert not enabled(BASE)
    assert not enabled(dataclasses.replace(on, interrupt_response=False))
    assert not enabled(dataclasses.replace(on, input_transcription_model=""))
    assert not enabled(dataclasses.replace(on, turn_mode="push_to_talk"))


def window() -> Window:
    return Window(item_id="u1", vocabulary=VOCABULARY, started=100.0, silence_ms=500)


def test_a_listed_word_that_ends_in_time_is_a_backchannel() -> None:
    w = window()
    assert w.partial("Mm") is Verdict.UNDECIDED
    assert w.speech_stopped(100.9) is Verdict.UNDECIDED  # waits for the final transcript
    assert w.transcript("Mm-hmm.") is Verdict.BACKCHANNEL
    assert w.reason == "listed"


@pytest.mark.parametrize("spelled", ["M.A.K.", "F-a-f-a"])
def test_a_hum_the_transcriber_spelled_out_as_letters_is_a_backchannel(spelled: str) -> None:
    w = window()
    w.speech_stopped(100.8)
    assert w.transcript(spelled) is Verdict.BACKCHANNEL
    assert window().transcript("No.") is Verdict.BARGE_IN  # a word of two letters is a word


def test_a_partial_waits_for_its_last_word_which_may_be_cut_off() -> None:
    w = window()
    assert w.partial("Oka") is Verdict.UNDECIDED
    assert w.partial("y, stop") is Verdict.UNDECIDED
    assert w.partial(" it") is Verdict.BARGE_IN


def test_a_cough_with_no_words_is_a_backchannel() -> None:
    w = window()
    w.speech_stopped(100.8)
    assert w.transcript("") is Verdict.BACKCHANNEL
    assert w.reason == "no_words"


def test_a_word_off_the_list_barges_in_at_once() -> None:
    w = window()
    assert w.partial("Okay, wait, st") is Verdict.BARGE_IN
    assert w.reason == "words"
    late = window()
    late.speech_stopped(100.8)
    assert late.transcript("Wait, stop.") is Verdict.BARGE_IN


def test_speech_longer_than_a_backchannel_barges_in() -> None:
    w = window()
    bound = 100.0 + (BACKCHANNEL_MAX_MS + 500 + EVENT_LAG_SLACK_MS) / 1000
    assert w.next_deadline() == pytest.approx(bound)
    assert w.expired(bound - 0.01) is Verdict.UNDECIDED
    assert w.expired(bound) is Verdict.BARGE_IN
    assert w.reason == "long"
    stopped_late = window()
    assert stopped_late.speech_stopped(100.0 + 1.5 + 0.1) is Verdict.BARGE_IN
    long_by_its_audio = window()
    assert long_by_its_audio.speech_stopped(101.7, speech_end=101.1) is Verdict.BARGE_IN
    assert long_by_its_audio.reason == "long"


def test_a_short_hum_reported_late_by_a_busy_upstream_is_still_short() -> None:
    """Its ``speech_stopped`` comes 2.1 s after the start, but its audio ended at 0.7 s."""
    w = window()
    assert w.expired(101.9) is Verdict.UNDECIDED  # the timer allows for the upstream's lag
    assert w.speech_stopped(102.1, speech_end=100.7) is Verdict.UNDECIDED
    assert w.transcript("Uh-huh.") is Verdict.BACKCHANNEL


def test_a_transcript_that_never_comes_barges_in() -> None:
    w = window()
    w.speech_stopped(100.8)
    assert w.next_deadline() == pytest.approx(100.8 + TRANSCRIPT_WAIT_MS / 1000)
    assert w.expired(100.8 + TRANSCRIPT_WAIT_MS / 1000) is Verdict.BARGE_IN
    assert w.reason == "no_transcript"


def test_a_transcript_before_speech_stopped_waits_for_the_end() -> None:
    w = window()
    assert w.transcript("yeah") is Verdict.UNDECIDED


def test_the_timeline_for_the_logs_counts_from_the_speech_start() -> None:
    w = window()
    assert w.timeline(100.2) == "speech ended at -, its stop came at -, decided at 200 ms"
    w.speech_stopped(101.0, speech_end=100.4)
    assert w.timeline(101.5) == (
        "speech ended at 400 ms, its stop came at 1000 ms, decided at 1500 ms"
    )
