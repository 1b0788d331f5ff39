"""Admin for tools and knowledge bases.

Secret headers are write-only: the form takes ``Name: value`` lines (``env:NAME`` values name
an environment variable), stores them encrypted and shows back only the header names.

Editing tools does not let anyone make the server send a value they could not see: ``env:``
references and *allow a private address* need the permission ``manage_tool_secrets`` too (and
``env:`` only names ``TOOLS_SECRET_ENV_NAMES``), and stored secrets never follow the URL to
another scheme, host or port unless they are entered again.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from assistant.tools import secrets
from assistant.tools.builtin import BUILTINS
from assistant.tools.models import KnowledgeBase, KnowledgeDocument, Tool

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MANAGE_SECRETS = "tools.manage_tool_secrets"
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, default ports written out: where secrets would go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a number: compare as written
        return scheme, parts.netloc.lower(), None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


class ToolForm(forms.ModelForm):
    """The tool, with its secret headers as a write-only field."""

    #: The user may reference environment secrets and private networks (set per request).
    may_manage_secrets: ClassVar[bool] = False

    new_secret_headers = forms.CharField(
        label=_("Secret headers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "autocomplete": "off"}),
        help_text=_(
            "One “Name: value” per line, e.g. “Authorization: Bearer …” or "
            "“X-Api-Key: env:TOOL_SECRET_ORDERS” (read from the environment when the tool runs; "
            "only names TOOLS_SECRET_ENV_NAMES allows, and only with the permission to reference "
            "environment secrets). Stored encrypted and never shown again; leave empty to keep "
            "the current ones."
        ),
    )
    clear_secret_headers = forms.BooleanField(label=_("Remove the secret headers"), required=False)
    mcp_server_url = forms.URLField(
        label=_("MCP server URL"), required=False, assume_scheme="https", max_length=200
    )

    class Meta:
        model = Tool
        fields = "__all__"  # noqa: DJ007 - every field is edited, in the fieldsets below

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        private = self.fields.get("allow_private_network")
        if private is not None:
            private.help_text += " Only with the permission to manage tool secrets."

    def clean_new_secret_headers(self) -> dict[str, str] | None:
        """Parsed now, so a malformed line or a name not allowed is an error on this field."""
        text = self.cleaned_data.get("new_secret_headers", "")
        if not text.strip():
            return None
        try:
            headers = secrets.parse_header_lines(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if secrets.env_references(headers) and not self.may_manage_secrets:
            msg = gettext(
                "Reading a secret from the environment (env:…) needs the permission “Can "
                "reference environment secrets and private networks”, which you do not have."
            )
            raise ValidationError(msg)
        problems = secrets.header_problems(headers)
        if problems:
            raise ValidationError([problem[0].upper() + problem[1:] + "." for problem in problems])
        return headers

    def clean(self) -> dict[str, Any]:
        """What only the permission allows, and secrets that would follow the URL elsewhere."""
        data = super().clean() or {}
        # Still the stored tool: the form's values reach the instance after clean().
        before = self.instance
        private = bool(data.get("allow_private_network"))
        # A URL with its own error is not compared (that error says what to fix).
        moved = (
            bool(before.url_template)
            and "url_template" in data
            and url_origin(data["url_template"]) != url_origin(before.url_template)
        )
        if private and not self.may_manage_secrets:
            if not before.allow_private_network:
                self.add_error(
                    "allow_private_network",
                    gettext(
                        "Allowing a private address needs the permission “Can reference "
                        "environment secrets and private networks”, which you do not have."
                    ),
                )
            elif moved:
                self.add_error(
                    "url_template",
                    gettext(
                        "This tool may reach private addresses: changing its scheme, host or "
                        "port needs the permission “Can reference environment secrets and "
                        "private networks”, which you do not have (or untick “allow a private "
                        "address”)."
                    ),
                )
        retyped = data.get("new_secret_headers") or data.get("clear_secret_headers")
        if before.secret_headers and moved and not retyped:
            self.add_error(
                "url_template",
                gettext(
                    "This tool has stored secret headers, which would go to the new scheme, "
                    "host or port: enter the secret headers again or remove them."
                ),
            )
        return data

    def save(self, commit: bool = True) -> Tool:
        """Encrypt what was typed into the secret headers."""
        tool: Tool = super().save(commit=False)
        if self.cleaned_data.get("clear_secret_headers"):
            tool.secret_headers = ""
        elif self.cleaned_data.get("new_secret_headers"):
            tool.secret_headers = secrets.encrypt_headers(self.cleaned_data["new_secret_headers"])
        if tool.kind == Tool.Kind.BUILTIN and tool.builtin in BUILTINS:
            tool.name = tool.builtin
        if commit:
            tool.save()
            self.save_m2m()
        return tool


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    """Tools and the profiles that may use them."""

    form = ToolForm
    list_display = (
        "name",
        "kind",
        "is_enabled",
        "requires_approval",
        "secret_headers_state",
        "updated_at",
    )
    list_filter = ("kind", "is_enabled", "requires_approval")
    search_fields = ("name", "description", "url_template")
    filter_horizontal = ("profiles",)
    readonly_fields = ("stored_secret_headers", "updated_at")
    fieldsets = (
        (None, {"fields": ("kind", "builtin", "name", "description", "is_enabled", "profiles")}),
        (
            _("Calling"),
            {"fields": ("parameters", "requires_approval", "interim_phrase", "timeout_seconds")},
        ),
        (
            _("HTTP tools"),
            {
                "fields": (
                    "http_method",
                    "url_template",
                    "headers",
                    "stored_secret_headers",
                    "new_secret_headers",
                    "clear_secret_headers",
                    "allow_private_network",
                    "max_response_bytes",
                    "evaluation_answer",
                )
            },
        ),
        (
            _("MCP servers (Azure Voice Live only)"),
            {"fields": ("mcp_server_url", "mcp_allowed_tools", "mcp_require_approval")},
        ),
        (None, {"fields": ("updated_at",)}),
    )

    def get_form(
        self, request: HttpRequest, obj: Tool | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Tool]]:
        """The form, knowing whether this user may manage secrets."""
        form = super().get_form(request, obj, change, **kwargs)
        may = request.user.has_perm(MANAGE_SECRETS)
        subclass: type[forms.ModelForm[Tool]] = type(
            form.__name__, (form,), {"may_manage_secrets": may}
        )
        return subclass

    @admin.display(description=_("Stored secret headers"))
    def stored_secret_headers(self, tool: Tool) -> str:
        """Only the names, and why they cannot be sent: the values never leave the database."""
        names = secrets.header_names(tool.secret_headers)
        if tool.secret_headers and not names:
            return gettext("unreadable (the secret key changed): enter them again")
        problems = secrets.stored_problems(tool.secret_headers)
        if problems:
            return gettext("%(names)s. Not sent, the tool fails: %(problems)s") % {
                "names": ", ".join(names),
                "problems": "; ".join(problems),
            }
        return ", ".join(names) or gettext("none")

    @admin.display(description=_("Secret headers"))
    def secret_headers_state(self, tool: Tool) -> str:
        """The stored names, or the problem that keeps the tool from running."""
        if not tool.secret_headers:
            return ""
        problems = secrets.stored_problems(tool.secret_headers)
        if problems:
            return gettext("problem: %(problems)s") % {"problems": "; ".join(problems)}
        return ", ".join(secrets.header_names(tool.secret_headers))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """New tools start as HTTP tools (the built-ins exist already)."""
        return {"kind": Tool.Kind.HTTP, **super().get_changeform_initial_data(request)}


class DocumentForm(forms.ModelForm):
    """A document typed or pasted in, or uploaded as a UTF-8 text or Markdown file."""

    upload = forms.FileField(
        required=False,
        help_text=_("A .txt or .md file (UTF-8, at most 2 MB) replaces the text."),
    )

    class Meta:
        model = KnowledgeDocument
        fields = ("title", "text", "upload")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"].required = False

    def clean(self) -> dict[str, Any]:
        """Text from the upload when there is one; some text either way."""
        data = super().clean() or {}
        upload = data.get("upload")
        if upload is not None:
            if not upload.name.lower().endswith((".txt", ".md")):
                raise ValidationError({"upload": gettext("Upload a .txt or .md file.")})
            if upload.size > MAX_UPLOAD_BYTES:
                raise ValidationError({"upload": gettext("The file is larger than 2 MB.")})
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError({"upload": gettext("The file is not UTF-8 text.")}) from exc
            self.instance.text = data["text"]
        if not (data.get("text") or "").strip():
            raise ValidationError({"text": gettext("Type or paste the text, or upload a file.")})
        return data


class DocumentInline(admin.StackedInline):
    """The knowledge base's documents."""

    model = KnowledgeDocument
    form = DocumentForm
    extra = 1


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    """Knowledge bases, their documents and the profiles that search them."""

    list_display = ("name", "document_count")
    search_fields = ("name", "documents__title")
    filter_horizontal = ("profiles",)
    inlines = (DocumentInline,)

    @admin.display(description=_("Documents"))
    def document_count(self, base: KnowledgeBase) -> int:
        """How many documents it holds."""
        return base.documents.count()
