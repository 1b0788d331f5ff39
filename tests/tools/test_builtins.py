"""The built-in tools: time, knowledge-base search (SQLite FTS5), goodbye, handover."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest

from assistant.models import AssistantProfile
from assistant.tools.builtin import BUILTINS, clock, goodbye, handover, knowledge
from assistant.tools.context import ToolContext
from assistant.tools.models import KnowledgeBase, KnowledgeDocument

HANDBOOK = """Welcome to Acme.

Refund policy: customers may return any item within 30 days for a full refund, with the
receipt. Opened software is exchanged, not refunded.

Holidays: the office closes on public holidays."""


def test_every_builtin_has_a_valid_schema_and_a_matching_name() -> None:
    from jsonschema.validators import Draft202012Validator

    assert set(BUILTINS) == {
        "get_current_time",
        "search_knowledge_base",
        "end_conversation",
        "hand_over",
    }
    for name, tool in BUILTINS.items():
        assert tool.name == name
        Draft202012Validator.check_schema(dict(tool.parameters))


def test_the_time_is_the_users_local_time() -> None:
    answer = json.loads(clock.run({}, ToolContext(1, 1, time_zone="Europe/Paris")).output)
    now = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris"))
    assert answer["time_zone"] == "Europe/Paris"
    parsed = dt.datetime.fromisoformat(answer["iso"])
    assert abs((parsed - now).total_seconds()) < 5
    assert answer["utc_offset"] in {"+0100", "+0200"}
    bogus = json.loads(clock.run({}, ToolContext(1, 1, time_zone="Mars/Olympus")).output)
    assert bogus["time_zone"] == "UTC"


def test_goodbye_ends_and_handover_switches_only_to_allowed_profiles() -> None:
    assert goodbye.run({}, ToolContext(1, 1)).end_session
    context = ToolContext(1, 1, handover_profiles={1: "Friendly", 2: "French tutor"})
    result = handover.run({"profile": "french TUTOR"}, context)
    assert result.handover_profile_id == 2
    refused = handover.run({"profile": "Root shell"}, context)
    assert refused.handover_profile_id is None
    assert json.loads(refused.output)["available"] == ["French tutor"]
    assert handover.run({"profile": "Friendly"}, context).handover_profile_id is None


@pytest.mark.django_db
def test_knowledge_search_finds_cites_and_stays_within_the_profile() -> None:
    mine = AssistantProfile.objects.create(name="Support")
    other = AssistantProfile.objects.create(name="Other")
    base = KnowledgeBase.objects.create(name="Handbook")
    base.profiles.add(mine)
    KnowledgeDocument.objects.create(knowledge_base=base, title="Employee handbook", text=HANDBOOK)
    KnowledgeDocument.objects.create(
        knowledge_base=base, title="Parking", text="Park in zone B. Refunds of parking fees: no."
    )
    secret = KnowledgeBase.objects.create(name="Secret")
    secret.profiles.add(other)
    KnowledgeDocument.objects.create(
        knowledge_base=secret, title="Salaries", text="The refund policy for salaries is secret."
    )
    answer = json.loads(knowledge.run({"query": "refund policy"}, ToolContext(1, mine.pk)).output)
    titles = [r["title"] for r in answer["results"]]
    assert titles[0] == "Employee handbook"
    assert "Salaries" not in titles
    assert answer["results"][0]["passage"].startswith("Refund policy: customers may return")
    # Stemming (porter): "refunded" finds "refund".
    assert knowledge.search("refunded", mine.pk)
    # Edits reach the index (triggers), deletions too.
    KnowledgeDocument.objects.filter(title="Parking").update(text="Park anywhere.")
    assert [t for t, _ in knowledge.search("zone", mine.pk)] == []
    KnowledgeDocument.objects.filter(title="Employee handbook").delete()
    assert [t for t, _ in knowledge.search("holidays", mine.pk)] == []
    # FTS syntax from the model is just words.
    for query in ['refund" OR "x', "NEAR(a b)", "*", "title:secret", "^", ""]:
        knowledge.run({"query": query}, ToolContext(1, mine.pk))
    nothing = json.loads(knowledge.run({"query": "submarine"}, ToolContext(1, mine.pk)).output)
    assert nothing["results"] == []
