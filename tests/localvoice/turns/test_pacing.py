"""A reply's words go to synthesis before the client runs out of audio (``turns/pacing.py``)."""

from __future__ import annotations

import pytest

from localvoice.turns.pacing import Playout
from tests.localvoice.fakes import FakeChat
from tests.localvoice.server.test_session import Client

#: One sentence: without pacing it is spoken as its first 3 words, then all the rest at its end.
SENTENCE = (
    "The capital of France is Paris which sits on the river Seine and has been "
    "the home of French kings for many hundreds of years."
)


def paced(**speeds: float) -> Playout:
    """A playout that has sent 0.5 s of audio at t=10 and knows the given speeds."""
    playout = Playout()
    playout.sent(0.5, now=10.0)
    playout.synthesized(chars=10, seconds=10 * speeds.get("synth_s_per_char", 0.004))
    gap = speeds.get("token_gap_s", 0.1)
    playout.piece(10.0)
    playout.piece(10.0 + gap)
    return playout


def test_nothing_is_cut_before_audio_is_playing_or_while_a_chunk_is_synthesised():
    fresh = Playout()
    fresh.synthesized(chars=10, seconds=0.05)
    assert not fresh.must_cut(40, now=0.0)  # the first chunk has its own rule
    busy = paced()
    busy.synthesizing = 1
    assert not busy.must_cut(40, now=10.49)  # its audio will extend the playout


def test_the_words_go_when_one_more_token_would_leave_the_client_silent():
    playout = paced(synth_s_per_char=0.004, token_gap_s=0.1)
    # one more token (0.1 s) + synthesis of 20 + 6 chars (0.104 s) + slack (0.05 s)
    assert not playout.must_cut(20, now=10.0)  # 0.5 s of audio left: wait for more words
    assert playout.must_cut(20, now=10.26)  # 0.24 s left
    assert playout.must_cut(20, now=11.0)  # already silent


def test_slower_synthesis_cuts_earlier():
    quick, slow = paced(synth_s_per_char=0.002), paced(synth_s_per_char=0.01)
    assert not quick.must_cut(20, now=10.2)  # 0.3 s left against 0.1 + 0.05 + 0.05
    assert slow.must_cut(20, now=10.2)  # against 0.1 + 0.26 + 0.05


async def spoken_chunks(chat: FakeChat) -> list[str]:
    c = Client(llm=chat, first_chunk_words=3)
    try:
        await c.send({"type": "session.update", "session": {"turn_detection": None}})
        await c.send({"type": "response.create"})
        await c.wait_for("response.done", timeout=15)
        assert c.of("response.done")[0]["response"]["status"] == "completed"
        return [e["delta"].strip() for e in c.of("response.audio_transcript.delta")]
    finally:
        c.close()


@pytest.mark.parametrize("gap_s", [0.0, 0.06])
async def test_a_slow_model_is_spoken_in_more_chunks_every_word_once_in_order(gap_s):
    """The fake voice says 10 ms a character: 60 ms a word, a word every 60 ms from the model."""
    chat = FakeChat(SENTENCE)
    chat.word_gap_s = gap_s
    chunks = await spoken_chunks(chat)
    assert " ".join(chunks) == SENTENCE
    assert chunks[0] == "The capital of"
    if gap_s == 0:  # the model keeps ahead of the voice: the sentence is spoken whole
        assert len(chunks) == 2
    else:  # the rest goes in pieces, each before the audio before it has played out
        assert len(chunks) > 2
