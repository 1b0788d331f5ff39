"""The assistant profile: what admins edit and every call reads (instructions, voice, turns)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from assistant.models.choices import (
    GreetingMode,
    TranscriptionModel,
    TurnDetection,
    TurnMode,
    validate_voice_name,
)
from assistant.turn_taking import (
    EndOfUtteranceModel,
    EndOfUtteranceThreshold,
    turn_taking_errors,
    validate_language_list,
    validate_phrase_list,
)
from assistant.voicelive.backchannels import (
    DEFAULT_BACKCHANNELS,
    BackchannelListError,
    ListError,
    parse_lists,
)


class AssistantProfile(models.Model):
    """How the assistant behaves for the users it is assigned to: prompt, voice, turn-taking."""

    name = models.CharField(
        _("name"),
        max_length=80,
        unique=True,
        help_text=_("Shown to users in the profile picker on the talk page."),
    )
    instructions = models.TextField(
        _("instructions"),
        blank=True,
        help_text=_(
            "The system prompt: who the assistant is and how it should answer. Keep spoken "
            "answers short; users hear every word. {first_name} is replaced by the user's "
            "first name."
        ),
    )
    model = models.CharField(
        _("model"),
        max_length=80,
        blank=True,
        help_text=_(
            "The Voice Live model, e.g. gpt-realtime. Leave empty to use the server's default "
            "(AZURE_VOICELIVE_MODEL). Takes effect for sessions started after the change."
        ),
    )
    voice = models.CharField(
        _("voice"),
        max_length=100,
        default="en-US-Ava:DragonHDLatestNeural",
        validators=[validate_voice_name],
        help_text=_(
            "An Azure standard or HD voice (e.g. en-US-Ava:DragonHDLatestNeural) or an OpenAI "
            "voice (alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar)."
        ),
    )
    temperature = models.FloatField(
        _("temperature"),
        default=0.8,
        validators=[MinValueValidator(0.6), MaxValueValidator(1.2)],
        help_text=_("Sampling temperature between 0.6 and 1.2; lower is more predictable."),
    )
    max_response_output_tokens = models.PositiveIntegerField(
        _("max response tokens"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(4096)],
        help_text=_("Upper bound on one reply's length (1-4096). Empty means no limit."),
    )
    turn_detection = models.CharField(
        _("turn detection"),
        max_length=40,
        choices=TurnDetection.choices,
        default=TurnDetection.SERVER_VAD,
        help_text=_(
            "How the service decides when a user starts and stops speaking. Server VAD "
            "listens for sound and silence; the semantic modes also weigh the words (pick the "
            "English, English-optimised or multilingual one to match your users). Not used in "
            "push-to-talk."
        ),
    )
    vad_threshold = models.FloatField(
        _("VAD threshold"),
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_(
            "How loud or clear speech must be to count, 0.0-1.0. Raise it in noisy rooms; "
            "lower it for quiet speakers."
        ),
    )
    vad_prefix_padding_ms = models.PositiveIntegerField(
        _("prefix padding (ms)"),
        default=300,
        validators=[MaxValueValidator(2000)],
        help_text=_(
            "Audio kept from just before speech was noticed, 0-2000 ms, so the first syllable "
            "is not lost."
        ),
    )
    vad_silence_duration_ms = models.PositiveIntegerField(
        _("silence duration (ms)"),
        default=500,
        validators=[MinValueValidator(100), MaxValueValidator(5000)],
        help_text=_(
            "How long a pause ends the user's turn, 100-5000 ms. Shorter answers faster but "
            "cuts off people who pause mid-thought; end-of-utterance detection below helps too."
        ),
    )
    vad_speech_duration_ms = models.PositiveIntegerField(
        _("minimum speech (ms)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(2000)],
        help_text=_(
            "Semantic VAD only: sound shorter than this (a click, a cough) starts no turn, "
            "0-2000 ms. Empty: Voice Live's default (80 ms)."
        ),
    )
    interrupt_response = models.BooleanField(
        _("allow barge-in"),
        default=True,
        help_text=_("Let users interrupt the assistant by speaking over it."),
    )
    auto_truncate = models.BooleanField(
        _("forget the unheard reply"),
        default=False,
        help_text=_(
            "When a user interrupts, cut the assistant's reply in the conversation where the "
            "user stopped hearing it, so the model does not believe it said the rest."
        ),
    )
    remove_filler_words = models.BooleanField(
        _("remove filler words"),
        default=False,
        help_text=_(
            "Semantic VAD only: “um”, “uh” or “yeah” while the assistant speaks do not "
            "interrupt it."
        ),
    )
    vad_languages = models.CharField(
        _("detection languages"),
        max_length=100,
        blank=True,
        validators=[validate_language_list],
        help_text=_(
            "Semantic VAD and multilingual semantic VAD only: the languages users speak, e.g. "
            "en,fr, so filler words are recognised in them. Empty: no restriction."
        ),
    )
    eou_model = models.CharField(
        _("end-of-utterance detection"),
        max_length=40,
        choices=EndOfUtteranceModel.choices,
        blank=True,
        default=EndOfUtteranceModel.SERVICE_DEFAULT,
        help_text=_(
            "After a pause, a model judges from the words whether the user has finished (“I "
            "would like to…” has not). Fewer cut-offs; it runs at every pause. Not available "
            "with gpt-realtime models. Voice Live's default may turn it on with the semantic "
            "modes; Off makes sure it is not."
        ),
    )
    eou_threshold_level = models.CharField(
        _("end-of-utterance threshold"),
        max_length=10,
        choices=EndOfUtteranceThreshold.choices,
        default=EndOfUtteranceThreshold.DEFAULT,
        help_text=_(
            "How sure the detector must be that the user has finished: low answers sooner, "
            "high waits for a clear ending and cuts fewer people off."
        ),
    )
    eou_timeout_ms = models.PositiveIntegerField(
        _("end-of-utterance timeout (ms)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(100), MaxValueValidator(10000)],
        help_text=_(
            "The longest the detector waits for an unfinished sentence to go on, 100-10000 "
            "ms; after that the turn ends anyway. Empty: Voice Live's default."
        ),
    )
    backchannels = models.BooleanField(
        _("let backchannels through"),
        default=True,
        help_text=_(
            "With barge-in on: a short “mhm”, “yeah” or a cough over a reply does not stop it "
            "(it plays on, ducked, while the words are checked). Needs a transcription model."
        ),
    )
    backchannel_words = models.TextField(
        _("backchannel words"),
        blank=True,
        default=DEFAULT_BACKCHANNELS,
        help_text=_(
            "One language a line: “en: mhm, uh-huh, yeah, okay”. Speech over a reply made only "
            "of these words (or of no words: a cough) does not interrupt it."
        ),
    )
    input_transcription_model = models.CharField(
        _("transcription model"),
        max_length=40,
        choices=TranscriptionModel.choices,
        blank=True,
        default=TranscriptionModel.AZURE_SPEECH,
        help_text=_("Transcribes what the user says for the live transcript. Empty turns it off."),
    )
    input_transcription_language = models.CharField(
        _("transcription language"),
        max_length=40,
        blank=True,
        validators=[validate_language_list],
        help_text=_(
            "The language users speak, e.g. en or en-US, or several to detect among: en,fr. "
            "Empty: left to Voice Live; naming the language is more accurate."
        ),
    )
    phrase_list = models.TextField(
        _("phrase list"),
        blank=True,
        validators=[validate_phrase_list],
        help_text=_(
            "Names and terms the transcription should expect (people, products, places), one "
            "per line, at most 500. azure-speech only; not with gpt-realtime models."
        ),
    )
    noise_suppression = models.BooleanField(
        _("noise suppression"),
        default=True,
        help_text=_("Azure deep noise suppression on the user's microphone audio."),
    )
    echo_cancellation = models.BooleanField(
        _("echo cancellation"),
        default=True,
        help_text=_("Server-side echo cancellation, so the assistant does not hear itself."),
    )
    turn_mode = models.CharField(
        _("turn-taking mode"),
        max_length=20,
        choices=TurnMode.choices,
        default=TurnMode.VOICE_ACTIVITY,
        help_text=_(
            "Voice activity: the service notices when the user stops speaking. Push-to-talk: "
            "the user holds a button (or the space bar) while speaking; best in noisy rooms."
        ),
    )
    allow_turn_mode_switch = models.BooleanField(
        _("users may switch the mode"),
        default=False,
        help_text=_("Show a switch on the talk page between voice activity and push-to-talk."),
    )
    greeting_mode = models.CharField(
        _("greeting"),
        max_length=10,
        choices=GreetingMode.choices,
        default=GreetingMode.NONE,
        help_text=_("Whether the assistant speaks first when a session starts."),
    )
    greeting_text = models.TextField(
        _("greeting text"),
        blank=True,
        max_length=500,
        help_text=_(
            "Said word for word when the greeting is “Say the greeting text”. {first_name} is "
            "replaced by the user's first name (in the instructions too)."
        ),
    )
    idle_check_in_seconds = models.PositiveIntegerField(
        _("check in after (s)"),
        default=0,
        validators=[MaxValueValidator(3600)],
        help_text=_(
            "After this many seconds with nobody speaking or typing, the assistant asks once "
            "whether the user is still there. 0 turns idle handling off."
        ),
    )
    idle_end_seconds = models.PositiveIntegerField(
        _("end after check-in (s)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_("After the check-in, this many more silent seconds end the session."),
    )
    speakerphone_default = models.BooleanField(
        _("speakerphone by default"),
        default=False,
        help_text=_(
            "Start with the talk page's Speakerphone setting on (for users on phones or "
            "laptops without headphones); users may still change it."
        ),
    )
    keep_transcripts = models.BooleanField(
        _("keep transcripts"),
        default=True,
        help_text=_(
            "Store what was said in the users' conversation history. Off: only usage (minutes, "
            "tokens, cost) is kept, and conversations cannot be continued."
        ),
    )
    is_enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("Disabled profiles are hidden from users and cannot start sessions."),
    )
    is_default = models.BooleanField(
        _("site default"),
        default=False,
        help_text=_(
            "Used by everyone without an assigned profile. Exactly one profile should be the "
            "default; marking this one unmarks the previous default."
        ),
    )
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="assistant_profiles",
        verbose_name=_("users"),
        help_text=_("Users who may use this profile (in addition to the groups below)."),
    )
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="assistant_profiles",
        verbose_name=_("groups"),
        help_text=_("Every member of these groups may use this profile."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Versions (assistant/models/versions.py): the number of the version these fields are, and
    # the admins' unpublished edits (a snapshot; None: nothing waits to be published).
    version = models.PositiveIntegerField(_("published version"), default=0, editable=False)
    draft = models.JSONField(_("draft"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("assistant profile")
        verbose_name_plural = _("assistant profiles")
        ordering: ClassVar = ["name"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="assistant_single_default_profile",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def validate_constraints(self, exclude: Any = None) -> None:
        """Skip the single-default constraint: ``profile_save`` moves the flag atomically."""
        super().validate_constraints(exclude={*(exclude or ()), "is_default"})

    def clean(self) -> None:
        """Cross-field checks the single-field validators cannot make."""
        errors: dict[str, ValidationError] = {}
        if self.is_default and not self.is_enabled:
            errors["is_enabled"] = ValidationError(
                _("The site default profile must stay enabled."), code="default_disabled"
            )
        errors.update(turn_taking_errors(self))
        if self.greeting_mode == GreetingMode.FIXED and not self.greeting_text.strip():
            errors["greeting_text"] = ValidationError(
                _("Write the greeting the assistant should say."), code="greeting_text_missing"
            )
        try:
            parse_lists(self.backchannel_words)
        except BackchannelListError as exc:
            errors["backchannel_words"] = ValidationError(
                _BACKCHANNEL_LIST_ERRORS[exc.code], code=exc.code, params={"line": exc.line}
            )
        if errors:
            raise ValidationError(errors)


_BACKCHANNEL_LIST_ERRORS = {
    ListError.TOO_LONG: _("The list is too long (4000 characters at most)."),
    ListError.BAD_LINE: _("Line %(line)s: write a language code, a colon, then the words."),
    ListError.EMPTY_LIST: _("Line %(line)s: the language has no words."),
    ListError.DUPLICATE_LANGUAGE: _("Line %(line)s: that language already has a line."),
}
