"""Admin for tools and knowledge bases.

Secret headers are write-only: the form takes ``Name: value`` lines (``env:NAME`` values name
an environment variable), stores them encrypted and shows back only the header names.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from assistant.tools import secrets
from assistant.tools.builtin import BUILTINS
from assistant.tools.models import KnowledgeBase, KnowledgeDocument, Tool

MAX_UPLOAD_BYTES = 2 * 1024 * 1024


class ToolForm(forms.ModelForm):
    """The tool, with its secret headers as a write-only field."""

    new_secret_headers = forms.CharField(
        label="Secret headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "autocomplete": "off"}),
        help_text="One “Name: value” per line, e.g. “Authorization: Bearer …” or "
        "“X-Api-Key: env:ORDERS_API_KEY” (read from the environment when the tool runs). "
        "Stored encrypted and never shown again; leave empty to keep the current ones.",
    )
    clear_secret_headers = forms.BooleanField(label="Remove the secret headers", required=False)
    mcp_server_url = forms.URLField(
        label="MCP server URL", required=False, assume_scheme="https", max_length=200
    )

    class Meta:
        model = Tool
        fields = "__all__"  # noqa: DJ007 - every field is edited, in the fieldsets below

    def clean_new_secret_headers(self) -> dict[str, str] | None:
        """Parsed now, so a malformed line is an error on this field."""
        text = self.cleaned_data.get("new_secret_headers", "")
        if not text.strip():
            return None
        try:
            return secrets.parse_header_lines(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

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
    list_display = ("name", "kind", "is_enabled", "requires_approval", "updated_at")
    list_filter = ("kind", "is_enabled", "requires_approval")
    search_fields = ("name", "description", "url_template")
    filter_horizontal = ("profiles",)
    readonly_fields = ("stored_secret_headers", "updated_at")
    fieldsets = (
        (None, {"fields": ("kind", "builtin", "name", "description", "is_enabled", "profiles")}),
        (
            "Calling",
            {"fields": ("parameters", "requires_approval", "interim_phrase", "timeout_seconds")},
        ),
        (
            "HTTP tools",
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
                )
            },
        ),
        (
            "MCP servers (Azure Voice Live only)",
            {"fields": ("mcp_server_url", "mcp_allowed_tools", "mcp_require_approval")},
        ),
        (None, {"fields": ("updated_at",)}),
    )

    @admin.display(description="Stored secret headers")
    def stored_secret_headers(self, tool: Tool) -> str:
        """Only the names: the values never leave the database."""
        names = secrets.header_names(tool.secret_headers)
        if tool.secret_headers and not names:
            return "unreadable (the secret key changed): enter them again"
        return ", ".join(names) or "none"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """New tools start as HTTP tools (the built-ins exist already)."""
        return {"kind": Tool.Kind.HTTP, **super().get_changeform_initial_data(request)}


class DocumentForm(forms.ModelForm):
    """A document typed or pasted in, or uploaded as a UTF-8 text or Markdown file."""

    upload = forms.FileField(
        required=False,
        help_text="A .txt or .md file (UTF-8, at most 2 MB) replaces the text.",
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
                raise ValidationError({"upload": "Upload a .txt or .md file."})
            if upload.size > MAX_UPLOAD_BYTES:
                raise ValidationError({"upload": "The file is larger than 2 MB."})
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError({"upload": "The file is not UTF-8 text."}) from exc
            self.instance.text = data["text"]
        if not (data.get("text") or "").strip():
            raise ValidationError({"text": "Type or paste the text, or upload a file."})
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

    @admin.display(description="Documents")
    def document_count(self, base: KnowledgeBase) -> int:
        """How many documents it holds."""
        return base.documents.count()
