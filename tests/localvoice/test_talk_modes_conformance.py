"""What push-to-talk, the greeting and the check-in ask of Voice Live, checked with the real
``azure-ai-voicelive`` SDK against a real localvoice (models loaded)."""

from __future__ import annotations

import pytest
from azure.ai.voicelive.models import ResponseCreateParams

from tests.localvoice.test_conformance import collect_response
from tests.support.audio import silence, speak, word_error_rate
from tests.support.localvoice import next_event, send_audio, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

QUESTION = "What is the capital of France"


async def test_push_to_talk_turn_without_turn_detection(localvoice_models):
    """turn_detection null; clear on press; append while held; commit + response.create."""
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.input_audio_buffer.clear()
        await next_event(conn, "input_audio_buffer.cleared")
        await send_audio(conn, silence(200) + speak(QUESTION) + silence(200))
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        seen: list = []
        heard = await next_event(
            conn, "conversation.item.input_audio_transcription.completed", timeout=60, seen=seen
        )
        assert word_error_rate(QUESTION, heard.transcript) <= 0.35, heard.transcript
        events, audio = await collect_response(conn)
        assert events[-1].response.status == "completed"
        assert audio
        # No VAD ran: the turn was the client's commit.
        types = {e.type for e in seen + events}
        assert "input_audio_buffer.speech_started" not in types
        assert "input_audio_buffer.committed" in types


async def test_empty_commit_is_an_error_and_the_session_survives(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.input_audio_buffer.commit()
        error = await next_event(conn, "error")
        assert error.error.code == "input_audio_buffer_commit_empty"
        await conn.input_audio_buffer.clear()
        await next_event(conn, "input_audio_buffer.cleared")


async def test_pre_generated_greeting_is_said_word_for_word(localvoice_models):
    greeting = "Hello Tess, how can I help you today?"
    async with voicelive_session(localvoice_models) as conn:
        await conn.response.create(
            response=ResponseCreateParams(
                pre_generated_assistant_message={
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": greeting}],
                }
            )
        )
        events, audio = await collect_response(conn)
        said = [e for e in events if e.type == "response.audio_transcript.done"]
        assert [e.transcript for e in said] == [greeting]
        assert len(audio) > 24_000 * 2 // 2  # at least half a second of speech
        assert events[-1].response.status == "completed"


async def test_a_reply_nobody_asked_for_with_additional_instructions(localvoice_models):
    """The model greeting and the idle check-in: response.create on a quiet conversation."""
    async with voicelive_session(localvoice_models, {"instructions": "You are kind."}) as conn:
        await conn.response.create(
            additional_instructions="Greet the user warmly in one short sentence."
        )
        events, audio = await collect_response(conn)
        said = [e for e in events if e.type == "response.audio_transcript.done"]
        assert said
        assert said[0].transcript.strip()
        assert audio
