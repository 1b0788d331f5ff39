"""My conversations: list, search, transcript, export, delete — and only one's own."""

from __future__ import annotations

import datetime as dt
import json
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.history.models import Conversation, Turn, UsageRecord

pytestmark = pytest.mark.django_db


def conversation(user: User, *lines: tuple[str, str], minutes_ago: int = 0) -> Conversation:
    started = timezone.now() - dt.timedelta(minutes=minutes_ago)
    talk = Conversation.objects.create(
        user=user, profile_name="Friendly assistant", started_at=started
    )
    for seq, (role, text) in enumerate(lines):
        Turn.objects.create(
            conversation=talk,
            seq=seq,
            role=role,
            text=text,
            started_at=started + dt.timedelta(seconds=seq),
        )
    return talk


@pytest.fixture
def erin(client: Client) -> User:
    user = User.objects.create_user("erin", password="pw-erin-123")
    client.force_login(user)
    return user


@pytest.fixture
def frank() -> User:
    return User.objects.create_user("frank", password="pw-frank-123")


def test_history_needs_login(client: Client) -> None:
    response = client.get(reverse("history:list"))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_own_conversations_newest_first(
    client: Client, erin: User, frank: User
) -> None:
    old = conversation(erin, ("user", "an old question"), minutes_ago=60)
    new = conversation(erin, ("user", "a new question"), ("assistant", "an answer"))
    conversation(frank, ("user", "frank's secret"))
    page = client.get(reverse("history:list")).context["page"]
    assert [c.pk for c in page.object_list] == [new.pk, old.pk]
    assert [c.turn_count for c in page.object_list] == [2, 1]


def test_the_list_is_paginated(client: Client, erin: User) -> None:
    for minutes in range(25):
        conversation(erin, minutes_ago=minutes)
    first = client.get(reverse("history:list")).context["page"]
    second = client.get(reverse("history:list"), {"page": 2}).context["page"]
    assert len(first.object_list) == 20
    assert len(second.object_list) == 5
    assert not {c.pk for c in first.object_list} & {c.pk for c in second.object_list}


def test_search_finds_words_in_transcripts_of_own_conversations_only(
    client: Client, erin: User, frank: User
) -> None:
    paris = conversation(erin, ("user", "What is the capital of France?"), ("assistant", "Paris."))
    conversation(erin, ("user", "Tell me a story about a dragon."))
    conversation(frank, ("user", "The capital of France, please."))
    found = client.get(reverse("history:list"), {"q": "capital FRANCE"}).context["page"]
    assert [c.pk for c in found.object_list] == [paris.pk]
    none = client.get(reverse("history:list"), {"q": "submarine"})
    assert list(none.context["page"].object_list) == []
    assert "No conversation mentions" in none.content.decode()


def test_search_matches_only_the_users_own_turns_with_a_bounded_number_of_words(
    client: Client, erin: User, frank: User
) -> None:
    """The text match runs over the user's turns only (not a LIKE over everyone's, issue 19)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    paris = conversation(erin, ("user", "What is the capital of France?"))
    conversation(frank, ("user", "The capital of France, please."))
    words = " ".join(["capital", "france"] + [f"w{n}" for n in range(40)])
    with CaptureQueriesContext(connection) as queries:
        found = client.get(reverse("history:list"), {"q": "capital france"}).context["page"]
        assert [c.pk for c in found.object_list] == [paris.pk]
        client.get(reverse("history:list"), {"q": words})
    searches = [q["sql"] for q in queries.captured_queries if "LIKE" in q["sql"]]
    assert searches, "the search ran no LIKE"
    for sql in searches:
        # The turns' subquery is narrowed to erin's conversations before any LIKE.
        turns = sql[sql.index(f'FROM "{Turn._meta.db_table}"') :]
        assert f'"user_id" = {erin.pk}' in turns[: turns.index("LIKE")]
        assert sql.count("LIKE") <= 8
    assert max(sql.count("LIKE") for sql in searches) == 8


def test_the_transcript_shows_who_said_what(client: Client, erin: User) -> None:
    talk = conversation(erin, ("user", "What is the capital of France?"), ("assistant", "Paris."))
    Turn.objects.filter(conversation=talk, seq=1).update(interrupted=True, heard_ms=640)
    body = client.get(reverse("history:detail", args=[talk.pk])).content.decode()
    assert "What is the capital of France?" in body
    assert "Paris." in body
    assert "interrupted after 640 ms" in body


def test_nobody_reaches_another_users_conversation_by_id(
    client: Client, erin: User, frank: User
) -> None:
    theirs = conversation(frank, ("user", "frank's secret"))
    for name, args in [
        ("history:detail", [theirs.pk]),
        ("history:export", [theirs.pk, "json"]),
        ("history:export", [theirs.pk, "txt"]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == HTTPStatus.NOT_FOUND
    assert client.post(reverse("history:delete", args=[theirs.pk])).status_code == 404
    client.post(reverse("history:delete_all"))
    assert Conversation.objects.filter(pk=theirs.pk).exists()
    exported = json.loads(client.get(reverse("history:export_all")).content)
    assert "frank's secret" not in json.dumps(exported)


def test_export_as_json_and_text(client: Client, erin: User) -> None:
    talk = conversation(erin, ("user", "Bonjour"), ("assistant", "Hello!"))
    response = client.get(reverse("history:export", args=[talk.pk, "json"]))
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert [(t["role"], t["text"]) for t in data["turns"]] == [
        ("user", "Bonjour"),
        ("assistant", "Hello!"),
    ]
    text = client.get(reverse("history:export", args=[talk.pk, "txt"])).content.decode()
    assert "You: Bonjour" in text
    assert "Assistant: Hello!" in text
    assert client.get(reverse("history:export", args=[talk.pk, "xml"])).status_code == 404
    everything = json.loads(client.get(reverse("history:export_all")).content)
    assert [c["id"] for c in everything["conversations"]] == [str(talk.pk)]


def test_delete_one_and_all_really_deletes_but_keeps_the_ledger(client: Client, erin: User) -> None:
    first = conversation(erin, ("user", "one"))
    second = conversation(erin, ("user", "two"))
    UsageRecord.objects.create(
        user=erin, conversation=first, session_id=first.pk, model="gpt-realtime", input_tokens=9
    )
    assert client.get(reverse("history:delete", args=[first.pk])).status_code == 405
    client.post(reverse("history:delete", args=[first.pk]))
    assert not Conversation.objects.filter(pk=first.pk).exists()
    assert not Turn.objects.filter(conversation_id=first.pk).exists()
    assert UsageRecord.objects.get(session_id=first.pk).input_tokens == 9  # billing keeps it
    confirm = client.get(reverse("history:delete_all"))
    assert "your 1 conversation " in confirm.content.decode()
    client.post(reverse("history:delete_all"))
    assert not Conversation.objects.filter(user=erin).exists()
    assert not Turn.objects.filter(conversation_id=second.pk).exists()


def test_the_search_box_survives_hostile_input(client: Client, erin: User) -> None:
    conversation(erin, ("user", "100% sure"))
    for query in ["%", "_", "' OR 1=1 --", "x" * 5000, "\x00"]:
        response = client.get(reverse("history:list"), {"q": query})
        assert response.status_code == HTTPStatus.OK, query
