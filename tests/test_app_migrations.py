"""The history and tools apps take their models over from ``assistant`` without touching data.

A database as ``main`` left it before the move (``assistant`` 0009, the models still in
``assistant``), with rows in every moved table and a group holding their permissions, migrates
to the latest state: the rows read back through the new apps' models, the group keeps its
permissions under the new app labels, and no table is created, altered, renamed or dropped.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assistant.history.models import Conversation, ModelPrice, Turn, UsageQuota, UsageRecord
from assistant.models import AssistantProfile
from assistant.tools.builtin import knowledge
from assistant.tools.models import KnowledgeBase, KnowledgeDocument, Tool

# Migrations need the schema editor outside a transaction (SQLite).
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("assistant", "0009_usage_accrual")]
THE_MOVE = ("assistant", "0010_history_and_tools_apps")
MOVED_TABLES = {
    "assistant_conversation",
    "assistant_turn",
    "assistant_usagerecord",
    "assistant_modelprice",
    "assistant_usagequota",
    "assistant_knowledgebase",
    "assistant_knowledgebase_profiles",
    "assistant_knowledgedocument",
    "assistant_tool",
    "assistant_tool_profiles",
}
#: Tables of migrations after the move (history 0002: the session timeline's events).
DDL = re.compile(r"\s*(CREATE|ALTER|DROP)\s", re.IGNORECASE)


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


#: Apps made after the move (their tables are new, not moved): left out of it.
APPS_AFTER_THE_MOVE = {"evaluation"}

#: The apps that took the models over, at the migration that did it.
TAKEN_OVER = [("history", "0001_initial"), ("tools", "0001_initial")]


def after_the_move() -> list[tuple[str, str]]:
    """Every app at its latest migration but ``assistant`` and the apps that took its models
    over, which stop at the move.

    Later migrations of those apps add columns of their own, which is DDL the move must not do.
    """
    moved = {"assistant", *(app for app, _ in TAKEN_OVER)}
    return [node for node in latest() if node[0] not in moved | APPS_AFTER_THE_MOVE] + [
        THE_MOVE,
        *TAKEN_OVER,
    ]


@pytest.fixture
def before_the_move() -> Iterator[Any]:
    """The apps registry of the database at ``assistant`` 0009; the latest state again after."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    try:
        yield executor.loader.project_state(BEFORE_THE_MOVE).apps
    finally:
        MigrationExecutor(connection).migrate(latest())  # whatever the test did
        ContentType.objects.clear_cache()


def rows_written_before_the_move(old: Any) -> dict[str, Any]:
    """One row in every moved table, through the models as ``assistant`` had them."""
    user = old.get_model("auth", "User").objects.create(username="before-the-move")
    profile = old.get_model("assistant", "AssistantProfile").objects.create(name="Before")
    started = timezone.now() - dt.timedelta(hours=1)
    conversation = old.get_model("assistant", "Conversation").objects.create(
        user=user, profile=profile, profile_name="Before", model="gpt-realtime"
    )
    old.get_model("assistant", "Turn").objects.create(
        conversation=conversation,
        seq=1,
        role="user",
        text="What is the refund policy?",
        started_at=started,
    )
    session_id = uuid.uuid4()
    old.get_model("assistant", "UsageRecord").objects.create(
        user=user,
        conversation=conversation,
        session_id=session_id,
        model="gpt-realtime",
        kind="accrued",
        audio_in_seconds=12.5,
    )
    old.get_model("assistant", "ModelPrice").objects.create(
        model="before-model", text_input=Decimal("4.0000")
    )
    old.get_model("assistant", "UsageQuota").objects.create(user=user, minutes_per_day=30)
    base = old.get_model("assistant", "KnowledgeBase").objects.create(name="Handbook")
    base.profiles.add(profile)
    old.get_model("assistant", "KnowledgeDocument").objects.create(
        knowledge_base=base, title="Refunds", text="Customers may return any item in 30 days."
    )
    tool = old.get_model("assistant", "Tool").objects.create(
        name="order_status", kind="http", url_template="https://api.example.com/{order_id}"
    )
    tool.profiles.add(profile)
    group = old.get_model("auth", "Group").objects.create(name="Support leads")
    group.permissions.set(
        old.get_model("auth", "Permission").objects.filter(
            content_type__app_label="assistant",
            codename__in=["view_conversation", "manage_tool_secrets"],
        )
    )
    return {"user": user.pk, "profile": profile.pk, "session": session_id, "group": group.pk}


def table_names() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def test_rows_written_before_the_move_are_read_by_the_new_apps(before_the_move: Any) -> None:
    before = rows_written_before_the_move(before_the_move)
    tables = table_names()
    assert tables >= MOVED_TABLES

    with CaptureQueriesContext(connection) as queries:
        MigrationExecutor(connection).migrate(after_the_move())
    tables_after_the_move = table_names()
    ContentType.objects.clear_cache()
    MigrationExecutor(connection).migrate(latest())

    assert [q["sql"] for q in queries if DDL.match(q["sql"])] == []
    assert tables_after_the_move == tables
    MigrationExecutor(connection).migrate(latest())  # the models below are today's
    conversation = Conversation.objects.get(user_id=before["user"])
    assert conversation._meta.app_label == "history"
    assert [turn.text for turn in Turn.objects.filter(conversation=conversation)] == [
        "What is the refund policy?"
    ]
    assert UsageRecord.objects.get(session_id=before["session"]).audio_in_seconds == 12.5
    assert ModelPrice.objects.get(model="before-model").text_input == Decimal("4.0000")
    assert UsageQuota.objects.get(user_id=before["user"]).minutes_per_day == 30
    assert KnowledgeBase.objects.get(name="Handbook").profiles.get().pk == before["profile"]
    assert KnowledgeDocument.objects.get(title="Refunds").knowledge_base.name == "Handbook"
    assert Tool.objects.get(name="order_status").profiles.get().pk == before["profile"]
    # The SQLite full-text index (triggers on the document table) still answers.
    assert knowledge.search("refund", before["profile"]) == [
        ("Refunds", "Customers may return any item in 30 days.")
    ]
    member = User.objects.create_user("member")
    member.groups.add(Group.objects.get(pk=before["group"]))
    assert member.has_perm("history.view_conversation")
    assert member.has_perm("tools.manage_tool_secrets")
    moved = {"conversation", "turn", "usagerecord", "tool", "knowledgebase"}
    assert not ContentType.objects.filter(app_label="assistant", model__in=moved).exists()


BEFORE_TURN_TAKING = [("assistant", "0010_history_and_tools_apps")]


def test_profiles_saved_before_the_turn_taking_settings_stay_valid() -> None:
    """0011 adds the turn-taking fields with defaults that keep a profile as it was."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_TURN_TAKING)
    old = executor.loader.project_state(BEFORE_TURN_TAKING).apps
    old.get_model("assistant", "AssistantProfile").objects.create(
        name="Before",
        turn_detection="azure_semantic_vad",
        remove_filler_words=True,
        input_transcription_language="en-US",
    )
    MigrationExecutor(connection).migrate(latest())

    profile = AssistantProfile.objects.get(name="Before")
    profile.full_clean()
    assert (profile.eou_model, profile.eou_threshold_level, profile.eou_timeout_ms) == (
        "",
        "default",
        None,
    )
    assert (profile.vad_languages, profile.vad_speech_duration_ms, profile.phrase_list) == (
        "",
        None,
        "",
    )
    assert not profile.auto_truncate
    assert profile.remove_filler_words
