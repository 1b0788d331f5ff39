"""Profile validation the admin form relies on (assistant/models/profile.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from assistant.models import AssistantProfile

pytestmark = pytest.mark.django_db


def test_backchannels_are_on_by_default_with_english_and_french_lists() -> None:
    profile = AssistantProfile(name="P", instructions="x")
    assert profile.backchannels is True
    assert profile.backchannel_words.splitlines()[0].startswith("en: mhm")
    assert profile.backchannel_words.splitlines()[1].startswith("fr: ")
    profile.clean()


def test_a_backchannel_list_that_does_not_parse_is_refused_with_its_line() -> None:
    profile = AssistantProfile(name="P", instructions="x", backchannel_words="en: mhm\nyeah")
    with pytest.raises(ValidationError) as raised:
        profile.clean()
    error = raised.value.error_dict["backchannel_words"][0]
    assert error.code == "bad_line"
    assert "Line 2" in error.messages[0]
