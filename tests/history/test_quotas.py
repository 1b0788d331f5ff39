"""Where a user stands against their quota (live sessions included) and what the talk page shows."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.history import quotas
from assistant.history.ledger import QuotaCheck
from assistant.history.models import Conversation, Turn, UsageQuota, UsageRecord
from assistant.history.quotas import quota_status
from assistant.history.resume import resume_load
from assistant.models import AssistantProfile, LiveSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def ivy(client: Client, default_profile: AssistantProfile) -> User:
    user = User.objects.create_user("ivy")
    client.force_login(user)
    return user


def used(user: User, seconds: float, session_id: uuid.UUID | None = None) -> None:
    UsageRecord.objects.create(
        user=user, session_id=session_id or uuid.uuid4(), model="m", audio_in_seconds=seconds
    )


def live(user: User, seconds: float, **fields: float) -> LiveSession:
    return LiveSession.objects.create(
        user=user,
        worker="other",
        channel_name="x",
        last_seen=timezone.now(),
        audio_in_seconds=seconds,
        **fields,
    )


def test_unlimited_without_a_quota(ivy: User) -> None:
    used(ivy, 10_000)
    assert not quota_status(user_id=ivy.pk).exceeded
    assert quota_status(user_id=ivy.pk).limit == ""


def test_written_usage_and_the_unwritten_part_of_live_sessions_count(ivy: User) -> None:
    UsageQuota.objects.create(user=ivy, minutes_per_day=10)
    used(ivy, 300)  # 5 minutes written
    # Another worker's session: 2.5 min used (audio both ways and typed), 1 min of it written.
    other = live(ivy, 100, audio_out_seconds=40, typed_seconds=10)
    UsageRecord.objects.create(
        user=ivy,
        session_id=other.pk,
        model="m",
        kind=UsageRecord.Kind.ACCRUED,
        audio_in_seconds=20,
        audio_out_seconds=30,
        typed_seconds=10,
    )
    mine = uuid.uuid4()
    check = quota_status(user_id=ivy.pk, session_id=mine, own_seconds=90)
    # 5 + 1 written, 1.5 of the other session and 1.5 of mine not yet: 9 of 10 minutes.
    assert check.fraction_used == pytest.approx(0.9)
    assert check.warn
    assert not check.exceeded
    assert check.limit == "day"


def test_a_stale_live_session_does_not_count(ivy: User) -> None:
    UsageQuota.objects.create(user=ivy, minutes_per_day=1)
    row = live(ivy, 600)
    LiveSession.objects.filter(pk=row.pk).update(
        last_seen=timezone.now() - timezone.timedelta(hours=1)
    )
    assert quota_status(user_id=ivy.pk).fraction_used == 0


def test_a_group_quota_applies(ivy: User) -> None:
    group = Group.objects.create(name="trial")
    ivy.groups.add(group)
    UsageQuota.objects.create(group=group, cost_per_month=Decimal("1.00"))
    UsageRecord.objects.create(user=ivy, session_id=uuid.uuid4(), model="m", estimated_cost=2)
    assert quota_status(user_id=ivy.pk).exceeded


def test_the_talk_page_shows_what_is_left_and_offers_to_continue(client: Client, ivy: User) -> None:
    UsageQuota.objects.create(user=ivy, minutes_per_day=30, minutes_per_month=600)
    used(ivy, 600)
    past = Conversation.objects.create(user=ivy, profile_name="Default")
    Turn.objects.create(conversation=past, seq=0, role="user", text="hi", started_at=timezone.now())
    body = client.get(reverse("assistant:talk")).content.decode()
    assert "20.0 minutes today" in body
    assert "590.0 minutes this month" in body
    assert f'href="/?resume={past.pk}"' in body
    assert "Continue where I left off" in body
    resumed = client.get(reverse("assistant:talk"), {"resume": str(past.pk)}).content.decode()
    assert f'data-resume="{past.pk}"' in resumed


def test_the_talk_page_refuses_to_continue_someone_elses(client: Client, ivy: User) -> None:
    theirs = Conversation.objects.create(user=User.objects.create_user("jack"))
    body = client.get(reverse("assistant:talk"), {"resume": str(theirs.pk)}).content.decode()
    assert "data-resume" not in body
    assert "it is not one of yours" in body


def test_the_transcript_page_has_continue(client: Client, ivy: User) -> None:
    past = Conversation.objects.create(user=ivy)
    body = client.get(reverse("history:detail", args=[past.pk])).content.decode()
    assert f'href="/?resume={past.pk}"' in body


def test_resume_is_bounded_and_follows_what_it_continued(ivy: User) -> None:
    now = timezone.now()
    first = Conversation.objects.create(user=ivy)
    for seq in range(3):
        Turn.objects.create(
            conversation=first, seq=seq, role="user", text=f"a{seq}", started_at=now
        )
    second = Conversation.objects.create(user=ivy, resumed_from=first)
    Turn.objects.create(conversation=second, seq=0, role="assistant", text="b0", started_at=now)
    Turn.objects.create(conversation=second, seq=1, role="user", text="", started_at=now)
    resume = resume_load(user_id=ivy.pk, raw=str(second.pk), max_items=3)
    assert resume is not None
    assert resume.items == [("user", "a1"), ("user", "a2"), ("assistant", "b0")]


class _Session:
    voice = None
    ended = False

    async def send_message(self, message: object) -> None:
        raise AssertionError(message)

    async def end(self, *args: object, **kwargs: object) -> None:
        raise AssertionError(args)


async def test_a_user_without_quota_is_rechecked_only_once_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = quotas.LiveQuota(_Session(), history=None, user_id=1, session_id=uuid.uuid4())
    request = live.request()
    assert request is not None
    assert request.user_id == 1
    await live.apply(QuotaCheck(0.0, "", None))
    assert live.request() is None  # not asked again on the next tick
    monkeypatch.setattr(quotas.time, "monotonic", lambda: 10.0**9)  # a minute and more later
    assert live.request() is not None


async def test_once_the_quota_is_used_up_new_turns_are_refused_until_the_end() -> None:
    """While the session winds down after its reply, a typed message or a push-to-talk release
    would buy another reply past the quota: refused with ``quota_exceeded``; the rest goes on."""
    from assistant import protocol

    live = quotas.LiveQuota(_Session(), history=None, user_id=1, session_id=uuid.uuid4())
    typed = protocol.TextSend(text="one more?")
    assert live.refusal(typed) is None  # not over quota yet
    await live.apply(QuotaCheck(1.0, "day", timezone.now()))
    assert live.ending is not None
    assert live.request() is None  # ending: no more checks
    live.ending.cancel()  # the end itself is not under test here
    with contextlib.suppress(asyncio.CancelledError):
        await live.ending
    refusal = live.refusal(typed)
    assert refusal is not None
    assert (refusal.code, bool(refusal.resets_at)) == ("quota_exceeded", True)
    assert live.refusal(protocol.InputRelease()) is not None
    assert live.refusal(protocol.InputPress()) is None  # a press only stops the reply
    assert live.refusal(protocol.PlaybackInterrupted(item_id="a", played_ms=5)) is None
