"""The tools admin: secrets are write-only, and editing tools needs its permission."""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from assistant.tools.models import KnowledgeBase, Tool
from assistant.tools.secrets import decrypt_headers

pytestmark = pytest.mark.django_db

SECRET = "sk-live-do-not-leak-7f3a"


def form_data(**fields: str) -> dict[str, str]:
    return {
        "kind": "http",
        "name": "order_status",
        "description": "Look up an order.",
        "parameters": '{"type": "object", "properties": {"order_id": {"type": "string"}}}',
        "http_method": "GET",
        "url_template": "https://api.example.com/orders/{order_id}",
        "headers": '{"Accept": "application/json"}',
        "timeout_seconds": "8",
        "max_response_bytes": "65536",
        "mcp_allowed_tools": "[]",
        "mcp_require_approval": "always",
        "is_enabled": "on",
        **fields,
    }


def test_a_secret_header_is_stored_encrypted_and_never_shown(admin_client: Client) -> None:
    add = reverse("admin:tools_tool_add")
    response = admin_client.post(
        add,
        form_data(
            new_secret_headers=f"Authorization: Bearer {SECRET}\nX-Key: env:TOOL_SECRET_ORDERS"
        ),
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:3000]
    tool = Tool.objects.get(name="order_status")
    assert SECRET not in tool.secret_headers
    assert decrypt_headers(tool.secret_headers, resolve_env=False) == {
        "Authorization": f"Bearer {SECRET}",
        "X-Key": "env:TOOL_SECRET_ORDERS",
    }
    page = admin_client.get(reverse("admin:tools_tool_change", args=[tool.pk]))
    body = page.content.decode()
    assert "Authorization, X-Key" in body
    assert SECRET not in body
    assert tool.secret_headers not in body
    # Saving without typing secrets keeps them; the clear box removes them.
    admin_client.post(reverse("admin:tools_tool_change", args=[tool.pk]), form_data())
    tool.refresh_from_db()
    assert "Authorization" in decrypt_headers(tool.secret_headers, resolve_env=False)
    admin_client.post(
        reverse("admin:tools_tool_change", args=[tool.pk]),
        form_data(clear_secret_headers="on"),
    )
    tool.refresh_from_db()
    assert tool.secret_headers == ""


def test_bad_input_gets_field_errors(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:tools_tool_add"),
        form_data(
            new_secret_headers="no colon here",
            parameters='{"type": "object", "properties": {"a": {"type": "nope"}}}',
            url_template="https://{host}/x",
        ),
    )
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert {"new_secret_headers", "parameters", "url_template"} <= set(errors)
    assert not Tool.objects.filter(name="order_status").exists()


def test_staff_without_the_tool_permission_cannot_edit_tools(client: Client) -> None:
    staff = User.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tool"))
    client.force_login(staff)
    tool = Tool.objects.get(name="get_current_time")
    change = reverse("admin:tools_tool_change", args=[tool.pk])
    assert client.get(change).status_code == HTTPStatus.OK  # may look
    client.post(change, form_data(kind="builtin", builtin="get_current_time", name="x"))
    tool.refresh_from_db()
    assert tool.name == "get_current_time"
    assert client.post(reverse("admin:tools_tool_add"), form_data()).status_code == 403


def test_a_document_can_be_uploaded_as_text(admin_client: Client) -> None:
    upload = SimpleUploadedFile("policy.md", b"# Refunds\n\nWithin 30 days.", "text/markdown")
    data = {
        "name": "Handbook",
        "description": "",
        "documents-TOTAL_FORMS": "1",
        "documents-INITIAL_FORMS": "0",
        "documents-MIN_NUM_FORMS": "0",
        "documents-MAX_NUM_FORMS": "1000",
        "documents-0-title": "Refund policy",
        "documents-0-text": "",
        "documents-0-upload": upload,
    }
    response = admin_client.post(reverse("admin:tools_knowledgebase_add"), data)
    assert response.status_code == HTTPStatus.FOUND
    document = KnowledgeBase.objects.get(name="Handbook").documents.get()
    assert document.text == "# Refunds\n\nWithin 30 days."
    binary = SimpleUploadedFile("x.txt", io.BytesIO(b"\xff\xfe\x00").read(), "text/plain")
    data |= {"name": "Other", "documents-0-upload": binary}
    response = admin_client.post(reverse("admin:tools_knowledgebase_add"), data)
    assert response.status_code == HTTPStatus.OK
    assert "not UTF-8" in response.content.decode()
