"""The real azure-ai-voicelive SDK against a real localvoice (models loaded, faults enabled)."""

from __future__ import annotations

import asyncio
import base64

import pytest
from azure.ai.voicelive.models import (
    InputTextContentPart,
    ResponseCreateParams,
    SystemMessageItem,
    UserMessageItem,
)

from tests.support.audio import silence, speak, trim_silence, word_error_rate
from tests.support.localvoice import next_event, send_audio, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

QUESTION = "What is the capital of France"
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 400}


def user_text(text: str) -> UserMessageItem:
    return UserMessageItem(content=[InputTextContentPart(text=text)])


async def collect_response(conn, timeout: float = 60.0) -> tuple[list, bytes]:
    """Events of one response up to response.done, and its audio."""
    events = []
    audio = b""
    async with asyncio.timeout(timeout):
        while True:
            ev = await conn.recv()
            events.append(ev)
            if ev.type == "response.audio.delta":
                audio += ev.delta
            if ev.type == "response.done":
                return events, audio


async def test_session_update_is_echoed_merged(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(
            session={
                "instructions": "Be terse.",
                "voice": {"type": "azure-standard", "name": "en-US-Ava:DragonHDLatestNeural"},
                "turn_detection": {"type": "azure_semantic_vad", "silence_duration_ms": 350},
                "input_audio_sampling_rate": 16000,
            }
        )
        updated = await next_event(conn, "session.updated")
        session = updated.session
        assert session.id.startswith("sess_")
        assert session.instructions == "Be terse."
        assert session.voice["name"] == "en-US-Ava:DragonHDLatestNeural"
        assert session.turn_detection.type == "azure_semantic_vad"
        assert session.turn_detection.silence_duration_ms == 350
        assert session.turn_detection.threshold == 0.5  # default filled in
        assert session["input_audio_sampling_rate"] == 16000
        assert session["modalities"] == ["text", "audio"]  # untouched fields survive
        assert "expires_at" in session


async def test_spoken_turn_gives_transcripts_audio_and_usage(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": VAD}) as conn:
        await send_audio(conn, silence(300) + speak(QUESTION) + silence(1200))
        seen: list = []
        done = await next_event(conn, "response.done", timeout=60, seen=seen)
        types = [e.type for e in seen]
        order = [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.created",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.audio_transcript.delta",
            "response.audio.delta",
            "response.audio.done",
            "response.audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
        positions = [types.index(t) for t in order]
        assert positions == sorted(positions), types
        transcript = next(
            e for e in seen if e.type == "conversation.item.input_audio_transcription.completed"
        ).transcript
        wer = word_error_rate(QUESTION, transcript)
        print(f"\nheard {transcript!r}, WER {wer:.2f}")
        assert wer <= 0.35
        audio = b"".join(e.delta for e in seen if e.type == "response.audio.delta")
        assert len(audio) > 24000  # more than half a second at 24 kHz pcm16
        deltas = [e for e in seen if e.type == "response.audio.delta"]
        assert max(len(d.delta) for d in deltas) <= 24000 * 2 // 10  # small chunks
        assert done.response.status == "completed"
        assert done.response.usage.total_tokens > 0
        assert done.response.usage.output_tokens > 0
        reply = next(e for e in seen if e.type == "response.audio_transcript.done").transcript
        assert reply.strip()


async def test_response_create_with_instructions_text_only(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.conversation.item.create(item=user_text("Name a colour."))
        await next_event(conn, "conversation.item.created")
        await conn.response.create(
            response=ResponseCreateParams(
                modalities=["text"], instructions="You only ever answer with the word blue."
            )
        )
        events, audio = await collect_response(conn)
        types = [e.type for e in events]
        assert "response.text.delta" in types
        assert "response.text.done" in types
        assert audio == b""
        assert "response.audio.delta" not in types
        text = next(e for e in events if e.type == "response.text.done").text
        assert text.strip()
        assert events[-1].response.status == "completed"


async def test_additional_instructions_and_context_across_turns(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.conversation.item.create(
            item=SystemMessageItem(content=[InputTextContentPart(text="The user is called Ada.")])
        )
        await next_event(conn, "conversation.item.created")
        await conn.conversation.item.create(item=user_text("Hello, who am I?"))
        await next_event(conn, "conversation.item.created")
        await conn.response.create(additional_instructions="Greet the user by name.")
        events, audio = await collect_response(conn)
        assert events[-1].response.status == "completed"
        assert len(audio) > 4800
        first_item = events[-1].response.output[0]
        await conn.conversation.item.create(item=user_text("Thanks!"))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        events, audio = await collect_response(conn)
        assert events[-1].response.status == "completed"
        await conn.conversation.item.retrieve(item_id=first_item.id)
        retrieved = await next_event(conn, "conversation.item.retrieved")
        assert retrieved.item.id == first_item.id  # the first reply is still in the conversation


async def test_a_long_spoken_reply_voices_every_chunk_it_transcribes(localvoice_models):
    """Every chunk of a long reply (sentences, or words sent early so the client does not run
    out of audio: ``turns/pacing.py``) is in the transcript once and has its audio."""
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.conversation.item.create(
            item=user_text("Tell me about Paris in three full sentences.")
        )
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        events, audio = await collect_response(conn)
        assert events[-1].response.status == "completed"
        chunks = [e.delta for e in events if e.type == "response.audio_transcript.delta"]
        done = next(e for e in events if e.type == "response.audio_transcript.done")
        assert all(c.strip() for c in chunks)
        assert "".join(chunks).split() == done.transcript.split()
        words = len(done.transcript.split())
        seconds = len(audio) / 2 / 24000
        print(f"\n{len(chunks)} chunks, {words} words, {seconds:.1f} s: {chunks}")
        assert words >= 8
        assert seconds >= 0.12 * words  # no chunk was transcribed without being voiced


async def test_cancel_stops_audio_immediately(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.conversation.item.create(item=user_text("Tell me a long story about a dragon."))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        await next_event(conn, "response.audio.delta", timeout=30)
        await conn.response.cancel()
        seen: list = []
        done = await next_event(conn, "response.done", timeout=5, seen=seen)
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "client_cancelled"
        assert done.response.output[0].status == "incomplete"
        with pytest.raises(TimeoutError):
            await next_event(conn, "response.audio.delta", timeout=1.5)


async def test_barge_in_cancels_with_turn_detected(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": VAD}) as conn:
        await conn.conversation.item.create(item=user_text("Tell me a long story about a dragon."))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        await next_event(conn, "response.audio.delta", timeout=30)
        await send_audio(conn, speak("Stop please") + silence(800))
        seen: list = []
        done = await next_event(conn, "response.done", timeout=10, seen=seen)
        assert "input_audio_buffer.speech_started" in [e.type for e in seen]
        assert done.response.status == "cancelled"
        assert done.response.status_details.reason == "turn_detected"


async def test_truncate_cuts_assistant_text(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.conversation.item.create(item=user_text("Describe the sea in two sentences."))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        events, audio = await collect_response(conn)
        item = events[-1].response.output[0]
        full = item.content[0].transcript
        total_ms = len(audio) // 2 * 1000 // 24000
        await conn.conversation.item.truncate(
            item_id=item.id, content_index=0, audio_end_ms=total_ms // 3
        )
        truncated = await next_event(conn, "conversation.item.truncated")
        assert truncated.item_id == item.id
        assert truncated.audio_end_ms == total_ms // 3
        await conn.conversation.item.retrieve(item_id=item.id)
        cut = (await next_event(conn, "conversation.item.retrieved")).item.content[0].transcript
        assert len(cut) < len(full)
        assert full.startswith(cut)
        await conn.conversation.item.truncate(item_id="item_nope", content_index=0, audio_end_ms=10)
        err = await next_event(conn, "error")
        assert err.error.code == "item_not_found"


async def test_bad_events_get_error_codes_and_session_survives(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        ws = conn._connection  # the SDK cannot send invalid JSON itself
        await ws.send_str("{not json")
        assert (await next_event(conn, "error")).error.code == "invalid_json"
        await conn.send({"type": "no.such.event"})
        assert (await next_event(conn, "error")).error.code == "unknown_event_type"
        await conn.send({"type": "input_audio_buffer.append"})
        err = (await next_event(conn, "error")).error
        assert err.code == "missing_required_parameter"
        assert err.param == "audio"
        await conn.send({"type": "conversation.item.truncate", "item_id": "x"})
        assert (await next_event(conn, "error")).error.code == "missing_required_parameter"
        await conn.response.cancel()
        err = (await next_event(conn, "error")).error
        assert err.code == "response_cancel_not_active"
        assert err.message == "Cancellation failed: no active response found."
        await conn.conversation.item.delete(item_id="item_missing")
        assert (await next_event(conn, "error")).error.code == "item_not_found"
        await conn.session.update(session={"voice": {"type": "azure-standard"}})
        assert (await next_event(conn, "error")).error.code == "invalid_voice"
        await conn.session.update(session={"voice": {"name": "x", "type": "martian"}})
        assert (await next_event(conn, "error")).error.code == "invalid_voice"
        await conn.send({"type": "input_audio_buffer.append", "audio": "!!!notbase64"})
        assert (await next_event(conn, "error")).error.code == "invalid_audio"
        await conn.send({"type": "localvoice.fault", "fault": "nonsense"})
        assert (await next_event(conn, "error")).error.code == "invalid_value"
        big = base64.b64encode(bytes(int(15.5 * 1024 * 1024 * 3 / 4))).decode()  # < 16 MiB frame
        await conn.send({"type": "input_audio_buffer.append", "audio": big})
        assert (await next_event(conn, "error")).error.code == "input_audio_buffer_append_too_large"
        await conn.send({"type": "input_audio_buffer.commit", "event_id": "evt-1"})
        err = (await next_event(conn, "error")).error
        assert err.code == "input_audio_buffer_commit_empty"
        assert err.event_id == "evt-1"
        # Still alive and still serving:
        await conn.session.update(session={"instructions": "Still here."})
        assert (await next_event(conn, "session.updated")).session.instructions == "Still here."


async def test_manual_commit_16khz_input(localvoice_models):
    session = {"turn_detection": None, "input_audio_sampling_rate": 16000}
    async with voicelive_session(localvoice_models, session) as conn:
        await send_audio(
            conn, silence(200, 16000) + speak(QUESTION, 16000) + silence(300, 16000), rate=16000
        )
        await conn.input_audio_buffer.commit()
        committed = await next_event(conn, "input_audio_buffer.committed")
        done = await next_event(conn, "conversation.item.input_audio_transcription.completed")
        assert done.item_id == committed.item_id
        wer = word_error_rate(QUESTION, done.transcript)
        print(f"\n16 kHz: heard {done.transcript!r}, WER {wer:.2f}")
        assert wer <= 0.35
        with pytest.raises(TimeoutError):  # commit alone never starts a response
            await next_event(conn, "response.created", timeout=1.0)
        await conn.response.create()
        events, audio = await collect_response(conn)
        assert events[-1].response.status == "completed"
        assert audio
        await conn.input_audio_buffer.clear()
        await next_event(conn, "input_audio_buffer.cleared")


async def test_pause_mid_sentence_gives_one_turn_and_one_reply(localvoice_models):
    """A pause shorter than silence_duration_ms must not answer early (speculation is dropped)."""
    vad = {**VAD, "silence_duration_ms": 700}
    async with voicelive_session(localvoice_models, {"turn_detection": vad}) as conn:
        first, second = trim_silence(speak("What is the capital")), trim_silence(speak("of France"))
        audio = first + silence(350) + second + silence(1500)
        await send_audio(conn, silence(200) + audio)
        seen: list = []
        await next_event(conn, "response.done", timeout=60, seen=seen)
        types = [e.type for e in seen]
        assert types.count("input_audio_buffer.speech_started") == 1
        assert types.count("response.created") == 1
        transcript = next(
            e for e in seen if e.type == "conversation.item.input_audio_transcription.completed"
        ).transcript
        assert "france" in transcript.lower(), transcript
        with pytest.raises(TimeoutError):
            await next_event(conn, "response.created", timeout=1.0)
