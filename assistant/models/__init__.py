"""The assistant app's models; import them from here.

``profile``: the assistant profile; ``versions``: its published versions and its draft;
``choices``: its fields' choices and validators; ``live``: the live-session registry.
"""

from __future__ import annotations

from assistant.models.choices import (
    CURATED_VOICES,
    GreetingMode,
    TranscriptionModel,
    TurnDetection,
    TurnMode,
    validate_voice_name,
)
from assistant.models.live import LiveSession, MonitorAttachment
from assistant.models.profile import AssistantProfile
from assistant.models.versions import ProfileVersion

__all__ = [
    "CURATED_VOICES",
    "AssistantProfile",
    "GreetingMode",
    "LiveSession",
    "MonitorAttachment",
    "ProfileVersion",
    "TranscriptionModel",
    "TurnDetection",
    "TurnMode",
    "validate_voice_name",
]
