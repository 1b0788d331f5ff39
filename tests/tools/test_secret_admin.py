"""Who may make a tool send what, through the real admin with real logged-in staff users.

A staff user who may only edit tools must not be able to make the server send a value they
could not see: no ``env:`` references, no private network, and stored secrets never follow the
URL to another scheme, host or port. With the permission, only the names the operator allowed
(``TOOLS_SECRET_ENV_NAMES``), never the server's own secrets.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from assistant.tools.models import Tool
from assistant.tools.secrets import decrypt_headers, encrypt_headers
from tests.tools.test_admin import form_data

pytestmark = pytest.mark.django_db

URL = "https://api.example.com/orders/{order_id}"
STORED = {"Authorization": "Bearer stored-by-the-operator-91c2", "X-Key": "env:TOOL_SECRET_ORDERS"}


def staff(client: Client, username: str, *codenames: str) -> Client:
    """``client`` logged in as a staff user with exactly these permissions."""
    user = User.objects.create_user(username, password=f"pw-{username}-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    assert client.login(username=username, password=f"pw-{username}-1")
    return client


@pytest.fixture
def editor(client: Client) -> Client:
    """A staff user who may add, change and view tools, and nothing more."""
    return staff(client, "tool-editor", "add_tool", "change_tool", "view_tool")


@pytest.fixture
def operator(client: Client) -> Client:
    """A staff user who may also reference environment secrets and private networks."""
    return staff(
        client, "tool-operator", "add_tool", "change_tool", "view_tool", "manage_tool_secrets"
    )


def stored_tool(**fields: Any) -> Tool:
    """A tool as an operator configured it, with stored secret headers."""
    values: dict[str, Any] = {
        "name": "order_status",
        "kind": Tool.Kind.HTTP,
        "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        "url_template": URL,
        "headers": {"Accept": "application/json"},
        "secret_headers": encrypt_headers(STORED),
    } | fields
    return Tool.objects.create(**values)


def post_change(client: Client, tool: Tool, **fields: str) -> Any:
    return client.post(reverse("admin:tools_tool_change", args=[tool.pk]), form_data(**fields))


def field_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == HTTPStatus.OK, "the form was expected to be refused"
    return dict(response.context["adminform"].form.errors)


def test_a_tool_editor_cannot_make_the_server_send_its_own_secrets(editor: Client) -> None:
    """The red team's tool: three env: headers naming the server's secrets, sent on the first
    call. Refused on the field, and nothing is saved."""
    add = reverse("admin:tools_tool_add")
    typed = "X-A: env:DJANGO_SECRET_KEY\nX-B: env:AZURE_VOICELIVE_API_KEY\nX-C: env:DATABASE_URL"
    errors = field_errors(editor.post(add, form_data(new_secret_headers=typed)))
    assert "needs the permission" in " ".join(errors["new_secret_headers"])
    # Even a name the operator allows needs the permission.
    errors = field_errors(
        editor.post(add, form_data(new_secret_headers="X-Key: env:TOOL_SECRET_ORDERS"))
    )
    assert "needs the permission" in " ".join(errors["new_secret_headers"])
    errors = field_errors(editor.post(add, form_data(allow_private_network="on")))
    assert "needs the permission" in " ".join(errors["allow_private_network"])
    assert not Tool.objects.filter(name="order_status").exists()
    # What the editor typed themselves is theirs to send.
    response = editor.post(add, form_data(new_secret_headers="Authorization: Bearer mine-123"))
    assert response.status_code == HTTPStatus.FOUND
    tool = Tool.objects.get(name="order_status")
    assert decrypt_headers(tool.secret_headers) == {"Authorization": "Bearer mine-123"}
    assert not tool.allow_private_network


def test_with_the_permission_only_allowed_names_and_never_the_servers_secrets(
    operator: Client, settings: Any
) -> None:
    add = reverse("admin:tools_tool_add")
    own = "one of the server's own secrets, which tools may never send"
    for name, reason in [
        ("DJANGO_SECRET_KEY", own),
        ("AZURE_CLIENT_SECRET", own),
        ("LOCALVOICE_API_KEY", own),
        ("METRICS_TOKEN", own),
        ("ORDERS_API_KEY", "which is not allowed (TOOLS_SECRET_ENV_NAMES: TOOL_SECRET_*)"),
        ("NOT A NAME", "which is not an environment variable's name"),
    ]:
        errors = field_errors(
            operator.post(add, form_data(new_secret_headers=f"X-Key: env:{name}"))
        )
        assert errors["new_secret_headers"] == [f"Secret header X-Key names {name}, {reason}."]
    response = operator.post(
        add,
        form_data(new_secret_headers="X-Key: env:TOOL_SECRET_ORDERS", allow_private_network="on"),
    )
    assert response.status_code == HTTPStatus.FOUND
    tool = Tool.objects.get(name="order_status")
    assert tool.allow_private_network
    assert decrypt_headers(tool.secret_headers, resolve_env=False) == {
        "X-Key": "env:TOOL_SECRET_ORDERS"
    }
    # The server's own secrets stay out whatever the setting says, for superusers too.
    settings.TOOLS_SECRET_ENV_NAMES = ["*"]
    operator.logout()
    User.objects.create_superuser("root", password="pw-root-1")
    operator.login(username="root", password="pw-root-1")
    errors = field_errors(
        post_change(operator, tool, new_secret_headers="X-Key: env:REDIS_URL\nX-Db: env:PGPASSWORD")
    )
    assert errors["new_secret_headers"] == [
        "Secret header X-Key names REDIS_URL, one of the server's own secrets, which tools may "
        "never send.",
        "Secret header X-Db names PGPASSWORD, one of the server's own secrets, which tools may "
        "never send.",
    ]


@pytest.mark.parametrize(
    "moved",
    [
        "https://attacker.example.net/orders/{order_id}",
        "https://api.example.com:8443/orders/{order_id}",
        "http://api.example.com/orders/{order_id}",
        "https://API.example.com.attacker.example.net/orders/{order_id}",
    ],
)
def test_stored_secrets_never_follow_the_url_to_another_origin(editor: Client, moved: str) -> None:
    """Repointing a tool would send secrets someone else entered to the editor's server."""
    tool = stored_tool()
    errors = field_errors(post_change(editor, tool, url_template=moved))
    assert "enter the secret headers again or remove them" in " ".join(errors["url_template"])
    tool.refresh_from_db()
    assert tool.url_template == URL
    assert decrypt_headers(tool.secret_headers, resolve_env=False) == STORED


def test_stored_secrets_stay_with_their_origin_and_go_when_entered_again(
    admin_client: Client, editor: Client
) -> None:
    tool = stored_tool()
    # Anyone, superusers included, must enter them again to move them.
    errors = field_errors(
        post_change(admin_client, tool, url_template="https://other.example.com/{order_id}")
    )
    assert "enter the secret headers again or remove them" in " ".join(errors["url_template"])
    # Another path on the same origin (default port written out or not) keeps them.
    for same in ["https://api.example.com:443/v2/orders/{order_id}", "https://api.example.com/x"]:
        response = post_change(editor, tool, url_template=same)
        assert response.status_code == HTTPStatus.FOUND, field_errors(response)
    tool.refresh_from_db()
    assert decrypt_headers(tool.secret_headers, resolve_env=False) == STORED
    # Typed again, the new secrets (the editor's own) go to the new host; or removed.
    response = post_change(
        editor,
        tool,
        url_template="https://other.example.com/{order_id}",
        new_secret_headers="Authorization: Bearer typed-again-55",
    )
    assert response.status_code == HTTPStatus.FOUND
    tool.refresh_from_db()
    assert decrypt_headers(tool.secret_headers) == {"Authorization": "Bearer typed-again-55"}
    response = post_change(
        editor, tool, url_template="https://third.example.com/{order_id}", clear_secret_headers="on"
    )
    assert response.status_code == HTTPStatus.FOUND
    tool.refresh_from_db()
    assert (tool.url_template, tool.secret_headers) == ("https://third.example.com/{order_id}", "")


def test_a_tool_editor_cannot_open_or_move_a_private_network_tool(editor: Client) -> None:
    with_secrets = stored_tool()
    errors = field_errors(post_change(editor, with_secrets, allow_private_network="on"))
    assert "needs the permission" in " ".join(errors["allow_private_network"])
    with_secrets.refresh_from_db()
    assert not with_secrets.allow_private_network
    # A tool the operator opened to an internal service: edits are fine, moving it is not.
    internal = stored_tool(
        name="inventory",
        url_template="http://inventory.internal:8080/{order_id}",
        secret_headers="",
        allow_private_network=True,
    )
    fields = {"name": "inventory", "allow_private_network": "on"}
    response = post_change(
        editor, internal, url_template=internal.url_template, description="Stock.", **fields
    )
    assert response.status_code == HTTPStatus.FOUND, field_errors(response)
    errors = field_errors(
        post_change(editor, internal, url_template="http://169.254.169.254/{order_id}", **fields)
    )
    assert "may reach private addresses" in " ".join(errors["url_template"])
    internal.refresh_from_db()
    assert internal.url_template == "http://inventory.internal:8080/{order_id}"
    # Unticked, it is a public-only tool like any other: the editor may point it anywhere.
    response = post_change(
        editor, internal, name="inventory", url_template="https://stock.example.com/{order_id}"
    )
    assert response.status_code == HTTPStatus.FOUND, field_errors(response)
    internal.refresh_from_db()
    assert not internal.allow_private_network


def test_a_stored_name_no_longer_allowed_is_shown_as_the_problem(admin_client: Client) -> None:
    """Tools saved before the policy (or before the setting changed) say why they fail."""
    stored_tool(secret_headers=encrypt_headers({"X-Key": "env:DJANGO_SECRET_KEY"}))
    stored_tool(name="legacy", secret_headers=encrypt_headers({"X-Old": "env:ORDERS_API_KEY"}))
    listing = admin_client.get(reverse("admin:tools_tool_changelist")).content.decode()
    assert (
        "secret header X-Key names DJANGO_SECRET_KEY, one of the server&#x27;s own secrets"
        in listing
    )
    assert "secret header X-Old names ORDERS_API_KEY, which is not allowed" in listing
    tool = Tool.objects.get(name="order_status")
    page = admin_client.get(reverse("admin:tools_tool_change", args=[tool.pk]))
    assert "Not sent, the tool fails: secret header X-Key names DJANGO_SECRET_KEY" in (
        page.content.decode()
    )
