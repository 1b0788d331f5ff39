"""Knowledge-base search on PostgreSQL: its own full-text search, ranked, within the profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import daphne_env, manage, throwaway_database

pytestmark = pytest.mark.integration

SCRIPT = """
from assistant.models import AssistantProfile
from assistant.tools.builtin.knowledge import search
from assistant.tools.models import KnowledgeBase, KnowledgeDocument

mine = AssistantProfile.objects.create(name="Support")
other = AssistantProfile.objects.create(name="Other")
base = KnowledgeBase.objects.create(name="Handbook")
base.profiles.add(mine)
KnowledgeDocument.objects.create(knowledge_base=base, title="Refund policy",
    text="Customers may return items within 30 days for a full refund.")
KnowledgeDocument.objects.create(knowledge_base=base, title="Parking",
    text="Park in zone B. No refunds of parking fees.")
hidden = KnowledgeBase.objects.create(name="Secret")
hidden.profiles.add(other)
KnowledgeDocument.objects.create(knowledge_base=hidden, title="Salaries",
    text="The refund policy for salaries.")
print("ranked", [t for t, _ in search("refund policy", mine.pk)])
print("stemmed", [t for t, _ in search("refunded returns", mine.pk)])
print("junk", search("' OR 1=1 -- & | ! :*", mine.pk))
"""


def test_knowledge_search_on_postgresql(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as database:
        if database.kind != "postgresql":
            pytest.skip("no PostgreSQL at 127.0.0.1:5432 (trust auth) on this machine")
        env = daphne_env(worker_name="kb", database_url=database.url, redis_url="", upstream_url="")
        manage(env, "migrate", "--noinput", "-v", "0")
        out = manage(env, "shell", "-c", SCRIPT)
    assert "ranked ['Refund policy', 'Parking']" in out, out
    assert "stemmed ['Refund policy'" in out, out
    assert "junk [" in out, out
