"""Plain configuration objects shared by the Django side and the Voice Live side (no Django)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionTool:
    """A tool of the session: what ``session.update`` lists, and how its calls are handled.

    Built by the Django side from the profile's tools (``assistant/tools/session_tools.py``).
    """

    name: str
    #: The tool as ``session.update`` lists it (``function`` or ``mcp``).
    definition: Mapping[str, Any]
    requires_approval: bool = False
    interim_phrase: str = ""
    timeout_seconds: float = 8.0


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything a voice session needs from an assistant profile, detached from the ORM."""

    profile_id: int
    profile_name: str
    instructions: str
    model: str
    voice: str
    temperature: float
    max_response_output_tokens: int | None
    turn_detection: str
    vad_threshold: float
    vad_prefix_padding_ms: int
    vad_silence_duration_ms: int
    interrupt_response: bool
    remove_filler_words: bool
    input_transcription_model: str
    input_transcription_language: str
    noise_suppression: bool
    echo_cancellation: bool
    # Talk modes (assistant/voicelive/talk_modes.py): "voice_activity" or "push_to_talk", and
    # whether the user may switch between them.
    turn_mode: str = "voice_activity"
    allow_turn_mode_switch: bool = False
    # "none", "fixed" (say greeting_text) or "model" (the model greets).
    greeting_mode: str = "none"
    greeting_text: str = ""
    # Check in after this many silent seconds (0: off); end the session this long after that.
    idle_check_in_seconds: int = 0
    idle_end_seconds: int = 30
    speakerphone_default: bool = False
    # The user's first name, for "{first_name}" in the instructions and the greeting.
    first_name: str = ""
    # When the profile was saved (its updated_at); the heartbeat compares it with the saved
    # profile's to pick up changes whose layer message was lost. Empty when unknown.
    profile_version: str = ""
    # Whether the conversation's text is kept in its history (else only its usage).
    keep_transcripts: bool = True
    #: The profile's enabled tools (function tools are run by this service, MCP by Voice Live).
    tools: tuple[SessionTool, ...] = ()
    # Turn-taking beyond the basics (assistant/voicelive/turn_settings.py). None: Voice Live's
    # default. Speech shorter than speech_duration_ms starts no turn (semantic types only).
    vad_speech_duration_ms: int | None = None
    # Language codes the semantic detector listens for (not the English-only type).
    vad_languages: tuple[str, ...] = ()
    auto_truncate: bool = False
    # End-of-utterance detection: "" (Voice Live's default), "off", or one of
    # turn_settings.EOU_MODELS.
    eou_model: str = ""
    eou_threshold_level: str = "default"
    eou_timeout_ms: int | None = None
    # Names and terms the transcription should expect (Azure speech only).
    phrase_list: tuple[str, ...] = ()
    # Backchannels (assistant/voicelive/backchannels.py): a short "mhm" over a reply does not
    # stop it; the per-language word lists, "en: mhm, yeah" one language a line.
    backchannels: bool = False
    backchannel_words: str = ""
    # The profile's published version these settings are (None: never published), and whether
    # they are its draft instead (staff trying unpublished edits: no quota, marked in history).
    version_number: int | None = None
    is_draft: bool = False

    def tool(self, name: str) -> SessionTool | None:
        """The function tool called ``name``, if the profile has it."""
        return next(
            (t for t in self.tools if t.name == name and t.definition.get("type") == "function"),
            None,
        )


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """Where and how to reach Voice Live (Azure, or the local engine)."""

    endpoint: str
    api_key: str
    api_version: str
    connect_timeout: float = 5.0
    # Replace the upstream connection after this long, between responses, before the service's
    # own session limit ends it.
    rollover_seconds: float = 1680.0
    # Keep at most this much context when re-seeding a rolled-over connection.
    history_items: int = 20
    # A reply that was asked for or is running, with no upstream event for this long, means the
    # upstream went silent (the SDK's own heartbeat only notices a dead socket after ~30 s).
    reply_stall_seconds: float = 15.0


def profile_version(updated_at: datetime | None) -> str:
    """A profile's version as sessions compare it (``SessionConfig.profile_version``)."""
    return updated_at.isoformat() if updated_at is not None else ""
