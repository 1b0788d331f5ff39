"""Tools and knowledge bases as admins configure them, per assistant profile.

The tables keep the names they had when these models belonged to the ``assistant`` app.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from jsonschema import exceptions as schema_errors
from jsonschema.validators import Draft202012Validator

from assistant.tools.builtin_names import BuiltinName

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: Function names the realtime API accepts.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Placeholders of a URL template: ``{name}``, filled from the call's arguments.
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SCHEMA_CHARS = 16_384
MAX_EVALUATION_ANSWER_CHARS = 4_000


def validate_tool_name(value: str) -> None:
    """Letters, digits, ``_`` and ``-``, at most 64: what function names may be."""
    if not TOOL_NAME_RE.fullmatch(value):
        raise ValidationError(
            _("Use 1 to 64 letters, digits, “_” or “-” (the model calls the tool by this name)."),
            code="invalid_tool_name",
        )


def validate_parameters_schema(value: object) -> None:
    """A JSON schema for an object of arguments (checked against the 2020-12 meta-schema)."""
    if not isinstance(value, dict) or value.get("type") != "object":
        raise ValidationError(
            _('The parameters must be a JSON schema of "type": "object".'), code="invalid_schema"
        )
    if len(str(value)) > MAX_SCHEMA_CHARS:
        raise ValidationError(_("The schema is too long."), code="invalid_schema")
    try:
        Draft202012Validator.check_schema(value)
    except schema_errors.SchemaError as exc:
        raise ValidationError(
            _("Not a valid JSON schema: %(error)s"),
            code="invalid_schema",
            params={"error": exc.message},
        ) from exc


def validate_url_template(value: str) -> None:
    """http(s) with a literal host: placeholders only in the path and query."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError(
            _("Use an http:// or https:// URL with a host."), code="invalid_url_template"
        )
    if PLACEHOLDER_RE.search(parts.netloc) or "{" in parts.netloc:
        raise ValidationError(
            _("The host must be written out: placeholders go in the path or the query only."),
            code="invalid_url_template",
        )
    if parts.username or parts.password:
        raise ValidationError(
            _("Put credentials in a secret header, not in the URL."), code="invalid_url_template"
        )


class KnowledgeBase(models.Model):
    """Documents an assistant may search; shared by the profiles it is given to."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    profiles = models.ManyToManyField(
        "assistant.AssistantProfile",
        related_name="knowledge_bases",
        blank=True,
        verbose_name=_("profiles"),
        help_text=_("Profiles whose knowledge-base search tool searches these documents."),
    )

    class Meta:
        db_table = "assistant_knowledgebase"
        ordering: ClassVar = ["name"]
        verbose_name = _("knowledge base")
        verbose_name_plural = _("knowledge bases")

    def __str__(self) -> str:
        return self.name


class KnowledgeDocument(models.Model):
    """One document: its title is cited in answers."""

    knowledge_base = models.ForeignKey(
        KnowledgeBase,
        on_delete=models.CASCADE,
        related_name="documents",
        verbose_name=_("knowledge base"),
    )
    title = models.CharField(_("title"), max_length=300)
    text = models.TextField(_("text"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        db_table = "assistant_knowledgedocument"
        ordering: ClassVar = ["knowledge_base", "title"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")

    def __str__(self) -> str:
        return self.title


class Tool(models.Model):
    """A tool the assistant of the chosen profiles may call."""

    class Kind(models.TextChoices):
        BUILTIN = "builtin", _("Built-in")
        HTTP = "http", _("HTTP request")
        MCP = "mcp", _("MCP server (Azure only)")

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    class McpApproval(models.TextChoices):
        NEVER = "never", _("Never ask")
        ALWAYS = "always", _("Always ask")

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[validate_tool_name],
        help_text=_("The function name the model calls (built-ins: filled in for you)."),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    builtin = models.CharField(
        _("built-in tool"),
        max_length=64,
        blank=True,
        choices=BuiltinName.choices,
    )
    description = models.TextField(
        _("description"),
        blank=True,
        help_text=_("What the model reads to decide when to call it (built-ins have their own)."),
    )
    parameters = models.JSONField(
        _("parameters (JSON schema)"),
        default=dict,
        blank=True,
        help_text=_('An object schema, e.g. {"type": "object", "properties": {...}}.'),
    )
    profiles = models.ManyToManyField(
        "assistant.AssistantProfile",
        related_name="tools",
        blank=True,
        verbose_name=_("profiles"),
    )
    is_enabled = models.BooleanField(_("enabled"), default=True)
    requires_approval = models.BooleanField(
        _("user approves each call"),
        default=False,
        help_text=_("The page asks the user (by voice or a click) before the tool runs."),
    )
    interim_phrase = models.CharField(
        _("interim phrase"),
        max_length=200,
        blank=True,
        help_text=_("Spoken while the tool runs, e.g. “Let me check…”."),
    )
    timeout_seconds = models.FloatField(
        _("timeout (s)"),
        default=8.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(30.0)],
    )
    # HTTP tools
    http_method = models.CharField(
        _("method"), max_length=8, choices=Method.choices, default=Method.GET
    )
    url_template = models.CharField(
        _("URL template"),
        max_length=2000,
        blank=True,
        help_text=_("e.g. https://api.example.com/orders/{order_id}: arguments fill the path."),
    )
    headers = models.JSONField(
        _("headers"),
        default=dict,
        blank=True,
        help_text=_("Plain headers as a JSON object. Secrets go in the secret headers below."),
    )
    secret_headers = models.TextField(_("secret headers (encrypted)"), blank=True, editable=False)
    allow_private_network = models.BooleanField(
        _("allow a private address"),
        default=False,
        help_text=_(
            "Let this tool reach its host even if it resolves to a private, loopback or "
            "link-local address (an internal service you trust)."
        ),
    )
    max_response_bytes = models.PositiveIntegerField(
        _("largest response (bytes)"),
        default=65_536,
        validators=[MinValueValidator(256), MaxValueValidator(1_048_576)],
    )
    #: An evaluation's replay returns this instead of calling the tool (its declared dry run).
    evaluation_answer = models.TextField(
        _("answer during evaluations"),
        blank=True,
        max_length=MAX_EVALUATION_ANSWER_CHARS,
        help_text=_(
            "An evaluation replays conversations to compare a draft with the published "
            "version; it never really calls this tool, so no order is placed and no mail sent. "
            "Write here what the tool would answer, in JSON, e.g. "
            '{"status": "shipped", "delivery": "Tuesday"}: the assistant gets it instead. '
            "Empty: the assistant is told the tool cannot be used during the evaluation."
        ),
    )
    # MCP servers
    mcp_server_url = models.URLField(_("MCP server URL"), blank=True)
    mcp_allowed_tools = models.JSONField(
        _("MCP allowed tools"),
        default=list,
        blank=True,
        help_text=_("A JSON list of tool names; empty: all the server's tools."),
    )
    mcp_require_approval = models.CharField(
        _("MCP approval"), max_length=8, choices=McpApproval.choices, default=McpApproval.ALWAYS
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        db_table = "assistant_tool"
        ordering: ClassVar = ["name"]
        verbose_name = _("tool")
        verbose_name_plural = _("tools")
        # Editing tools is not enough to make the server send its environment's values or
        # reach its private network: those two switches need this as well.
        permissions: ClassVar = [
            (
                "manage_tool_secrets",
                _("Can reference environment secrets and private networks"),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Each kind has the fields it needs, and only valid ones."""
        errors: dict[str, StrOrPromise] = {}
        if self.kind == self.Kind.BUILTIN:
            if self.builtin not in BuiltinName.values:
                errors["builtin"] = _("Pick a built-in tool.")
        elif self.kind == self.Kind.HTTP:
            if not self.description.strip():
                errors["description"] = _("Tell the model what the tool does.")
            if not self.url_template:
                errors["url_template"] = _("An HTTP tool needs its URL.")
            if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
            ):
                errors["headers"] = _('Use a JSON object of strings: {"Accept": "..."}.')
            self._check_placeholders(errors)
        elif self.kind == self.Kind.MCP:
            if not self.mcp_server_url:
                errors["mcp_server_url"] = _("An MCP tool needs its server URL.")
            if not isinstance(self.mcp_allowed_tools, list) or not all(
                isinstance(n, str) for n in self.mcp_allowed_tools
            ):
                errors["mcp_allowed_tools"] = _('Use a JSON list of names: ["search"].')
        if self.evaluation_answer.strip():
            if self.kind != self.Kind.HTTP:
                errors["evaluation_answer"] = _(
                    "Only an HTTP tool can declare its answer during evaluations."
                )
            else:
                try:
                    json.loads(self.evaluation_answer)
                except ValueError:
                    errors["evaluation_answer"] = _(
                        'Write the answer as JSON, e.g. {"status": "shipped"}.'
                    )
        if self.kind != self.Kind.BUILTIN and self.parameters:
            try:
                validate_parameters_schema(self.parameters)
            except ValidationError as exc:
                errors["parameters"] = exc.messages[0]
        if errors:
            raise ValidationError(errors)

    def _check_placeholders(self, errors: dict[str, StrOrPromise]) -> None:
        if not self.url_template or "url_template" in errors:
            return
        try:
            validate_url_template(self.url_template)
        except ValidationError as exc:
            errors["url_template"] = exc.messages[0]
            return
        declared = set((self.parameters or {}).get("properties", {}))
        missing = set(PLACEHOLDER_RE.findall(self.url_template)) - declared
        if missing:
            errors["url_template"] = _("Placeholders without a parameter: %(names)s") % {
                "names": ", ".join(sorted(missing))
            }
