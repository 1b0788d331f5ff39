"""Test sets and their checks; evaluation runs and the turns they replayed.

A run replays either the last N conversations of its profile that kept their transcripts, or a
test set. Its turns are planned when a runner first claims it (one row per user turn, in
order) and each row gets both answers as soon as they are in, so a runner that dies leaves a
run that the next runner resumes after its last stored turn. A turn taken from a conversation
points at it and is deleted with it (the history's retention and purge reach reports too).
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TestSet(models.Model):
    """A saved list of user turns, replayed in order as one conversation."""

    __test__ = False  # not a pytest class, whatever its name

    name = models.CharField(_("name"), max_length=200, unique=True)
    profile = models.ForeignKey(
        "assistant.AssistantProfile",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="test_sets",
        verbose_name=_("profile"),
        help_text=_("Optional: the profile this set was written for (any profile may use it)."),
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["name"]
        verbose_name = _("test set")
        verbose_name_plural = _("test sets")

    def __str__(self) -> str:
        return self.name

    def replayed_turns(self) -> list[TestTurn]:
        """The turns a replay sends, in order: those with a text (recordings not loaded)."""
        return [turn for turn in self.turns.defer("audio") if turn.text.strip()]


class TestTurn(models.Model):
    """One user turn of a test set: its text, and optionally a recording of it.

    A turn with a recording is sent as audio during a replay, so the speech recognition is
    evaluated too; its text is then the label the report shows.
    """

    __test__ = False

    test_set = models.ForeignKey(
        TestSet, on_delete=models.CASCADE, related_name="turns", verbose_name=_("test set")
    )
    position = models.PositiveIntegerField(_("order"), default=0)
    text = models.TextField(_("user says"), max_length=4000)
    #: 24 kHz PCM16 mono (``recordings.py`` converts an upload); in the row, so it goes with it.
    audio = models.BinaryField(_("recording"), null=True, blank=True, editable=False)

    class Meta:
        ordering: ClassVar = ["test_set", "position", "pk"]
        verbose_name = _("user turn")
        verbose_name_plural = _("user turns")

    def __str__(self) -> str:
        return self.text[:60]


class CheckKind(models.TextChoices):
    """What a check looks at; the exact kinds need no model, ``judged`` asks the engine's."""

    TOOL_CALLED = "tool_called", _("calls the tool")
    TOOL_NOT_CALLED = "tool_not_called", _("does not call the tool")
    PHRASE_APPEARS = "phrase_appears", _("the phrase appears")
    PHRASE_ABSENT = "phrase_absent", _("the phrase does not appear")
    JUDGED = "judged", _("model-judged statement")


class Check(models.Model):
    """A plain-language expectation of a test set's answers, scored on both sides of a run.

    With a ``turn`` number it looks at that turn's answer only; without, at the whole replay:
    a tool called in any turn, a phrase in any answer (absent from every one), a statement
    about all the answers together.
    """

    test_set = models.ForeignKey(
        TestSet, on_delete=models.CASCADE, related_name="checks", verbose_name=_("test set")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=CheckKind.choices)
    value = models.TextField(
        _("tool, phrase or statement"),
        max_length=1000,
        help_text=_(
            'A tool\'s name ("get_order_status"), a phrase (compared ignoring case), or for a '
            'model-judged check a statement ("The answers are in French.").'
        ),
    )
    turn = models.PositiveIntegerField(
        _("turn"),
        null=True,
        blank=True,
        help_text=_("The user turn's number (1 is the first); empty for the whole replay."),
    )

    class Meta:
        ordering: ClassVar = ["test_set", "pk"]
        verbose_name = _("check")
        verbose_name_plural = _("checks")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class RunStatus(models.TextChoices):
    """Where a run is: queued → running → done, failed, or (cancelling →) cancelled."""

    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    CANCELLING = "cancelling", _("cancelling")
    CANCELLED = "cancelled", _("cancelled")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


#: A run in one of these holds its profile: no second run of it may be queued.
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELLING)
FINISHED_STATUSES = (RunStatus.CANCELLED, RunStatus.DONE, RunStatus.FAILED)


class RunError(models.TextChoices):
    """Why a run failed: stable codes, shown on the run's page (docs/evaluation.md)."""

    ENGINE_UNAVAILABLE = "engine_unavailable", _("The engine could not be reached.")
    ENGINE_ERROR = "engine_error", _("The engine refused or failed a turn.")
    TURN_TIMEOUT = "turn_timeout", _("A turn got no complete answer in time.")
    NOTHING_TO_REPLAY = "nothing_to_replay", _("There was nothing to replay.")
    VERSION_MISSING = "version_missing", _("A version to compare no longer exists.")
    INTERNAL_ERROR = "internal_error", _("The runner failed (see its log).")


class RunSource(models.TextChoices):
    """What a run replays."""

    CONVERSATIONS = "conversations", _("last conversations")
    TEST_SET = "test_set", _("test set")


class EvaluationRun(models.Model):
    """One replay of a profile: a candidate against a baseline, in the background."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    profile = models.ForeignKey(
        "assistant.AssistantProfile",
        on_delete=models.CASCADE,
        related_name="evaluation_runs",
        verbose_name=_("profile"),
    )
    #: The candidate: a version number, or None for the draft as it was when the run was
    #: requested (``candidate_snapshot``), so an edit made meanwhile does not change the run.
    candidate_version = models.PositiveIntegerField(_("candidate version"), null=True, blank=True)
    candidate_snapshot = models.JSONField(_("candidate draft"), null=True, blank=True)
    #: The published version the draft was a draft of, when it was requested.
    draft_of = models.PositiveIntegerField(_("draft of version"), null=True, blank=True)
    baseline_version = models.PositiveIntegerField(_("baseline version"))
    source = models.CharField(_("replays"), max_length=20, choices=RunSource.choices)
    conversations = models.PositiveIntegerField(_("conversations"), null=True, blank=True)
    test_set = models.ForeignKey(
        TestSet,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
        verbose_name=_("test set"),
    )
    test_set_name = models.CharField(_("test set name"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    error_code = models.CharField(_("error"), max_length=32, choices=RunError.choices, blank=True)
    error_detail = models.TextField(_("error detail"), blank=True)
    turns_total = models.PositiveIntegerField(_("turns"), default=0)
    turns_done = models.PositiveIntegerField(_("turns done"), default=0)
    #: The checks' results, when the run is done (``checks.CheckResult.as_json`` each).
    check_results = models.JSONField(_("check results"), default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("requested"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    #: The runner process holding the run, until ``lease_expires_at``: it renews the lease
    #: while it works; past it, the run is another runner's to take over.
    lease_owner = models.CharField(_("runner"), max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("claims"), default=0)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        verbose_name = _("evaluation run")
        verbose_name_plural = _("evaluation runs")
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["profile"],
                condition=Q(status__in=[status.value for status in ACTIVE_STATUSES]),
                name="evaluation_one_active_run_per_profile",
            )
        ]
        indexes: ClassVar = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.candidate_description} vs {self.baseline_description}"

    @property
    def candidate_description(self) -> str:
        """The candidate: the draft (of version N), or version N."""
        if self.candidate_version is None:
            return str(_("draft (of version %(number)d)") % {"number": self.draft_of or 0})
        return str(_("version %(number)d") % {"number": self.candidate_version})

    @property
    def baseline_description(self) -> str:
        """The baseline: version N."""
        return str(_("version %(number)d") % {"number": self.baseline_version})

    @property
    def source_description(self) -> str:
        """The test set's name, or how many conversations."""
        if self.source == RunSource.TEST_SET:
            return str(_("test set “%(name)s”") % {"name": self.test_set_name})
        return str(_("last %(n)d conversations") % {"n": self.conversations or 0})

    @property
    def is_active(self) -> bool:
        """Queued, running or cancelling: it holds its profile."""
        return self.status in ACTIVE_STATUSES


class RunTurn(models.Model):
    """One user turn of a run, and both answers once replayed (``None`` until then)."""

    run = models.ForeignKey(
        EvaluationRun, on_delete=models.CASCADE, related_name="turns", verbose_name=_("run")
    )
    position = models.PositiveIntegerField(_("order"))
    #: Turns of one group were one conversation: replayed on one connection, in order.
    group = models.PositiveIntegerField(_("conversation number"))
    conversation = models.ForeignKey(
        "history.Conversation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("conversation"),
    )
    user_text = models.TextField(_("user"))
    #: The test set's turn it was planned from: its recording, if any, is sent when replayed
    #: (read then, not copied: a recording is kept once, and goes with its turn).
    test_turn = models.ForeignKey(
        TestTurn,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("test set turn"),
    )
    baseline = models.JSONField(_("baseline"), null=True, blank=True)
    candidate = models.JSONField(_("candidate"), null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["run", "position"]
        verbose_name = _("replayed turn")
        verbose_name_plural = _("replayed turns")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "position"], name="evaluation_turn_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} #{self.position}"

    @property
    def is_done(self) -> bool:
        """Both answers are stored."""
        return self.baseline is not None and self.candidate is not None
