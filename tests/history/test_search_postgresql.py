"""Transcript search on PostgreSQL uses its full-text search (stemming, web-search syntax)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import daphne_env, manage, throwaway_database

pytestmark = pytest.mark.integration

SCRIPT = """
import datetime as dt
from django.contrib.auth.models import User
from django.utils import timezone
from assistant.history.models import Conversation, Turn
from assistant.history.views import search

user = User.objects.create_user("kim")
def talk(text):
    c = Conversation.objects.create(user=user)
    Turn.objects.create(conversation=c, seq=0, role="user", text=text, started_at=timezone.now())
    return c
dragons = talk("Tell me stories about dragons and knights.")
paris = talk("What is the capital of France?")
mine = Conversation.objects.filter(user=user)
print("stemmed", [c.pk == dragons.pk for c in search(mine, "dragon story")])
print("phrase", [c.pk == paris.pk for c in search(mine, '"capital of France"')])
print("negated", len(search(mine, "capital -France")))
print("junk", len(search(mine, "' OR 1=1 -- & | ! :*")))
"""


def test_full_text_search_on_postgresql(tmp_path: Path) -> None:
    with throwaway_database(tmp_path) as database:
        if database.kind != "postgresql":
            # Like the scale-out tests: SQLite's search is covered in test_views.py.
            pytest.skip("no PostgreSQL at 127.0.0.1:5432 (trust auth) on this machine")
        env = daphne_env(
            worker_name="search", database_url=database.url, redis_url="", upstream_url=""
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        out = manage(env, "shell", "-c", SCRIPT)
    assert "stemmed [True]" in out, out
    assert "phrase [True]" in out, out
    assert "negated 0" in out, out
    assert "junk 0" in out, out
