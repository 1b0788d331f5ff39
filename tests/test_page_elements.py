"""The talk and monitor pages carry every element their scripts look up by id, once each.

The page modules (``talk.js``, ``monitor.js``) and ``session-view.js`` find their elements with
``$('id')`` / ``byId('id')``; the templates (with their shared includes) must keep every one.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.models import AssistantProfile, LiveSession

pytestmark = pytest.mark.django_db

JS = Path(__file__).resolve().parent.parent / "static" / "js"
LOOKUP = re.compile(r"""(?<![\w$])(?:\$|byId)\('([\w-]+)'\)""")


def looked_up(*modules: str) -> set[str]:
    """The ids the given modules look up."""
    found = {name for module in modules for name in LOOKUP.findall((JS / module).read_text())}
    assert found, modules
    return found


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [value for name, value in attrs if name == "id" and value]


def page_ids(client: Client, url: str) -> Counter[str]:
    response = client.get(url)
    assert response.status_code == 200
    parser = _Ids()
    parser.feed(response.content.decode())
    return Counter(parser.ids)


def test_talk_page_has_what_talk_js_looks_up(client: Client) -> None:
    user = User.objects.create_user("erin", password="pw-erin-12345")
    AssistantProfile.objects.create(name="Mine").users.add(user)
    client.force_login(user)
    ids = page_ids(client, reverse("assistant:talk"))
    assert looked_up("talk.js", "session-view.js") <= set(ids), ids
    assert all(count == 1 for count in ids.values()), ids


def test_monitor_page_has_what_monitor_js_looks_up(client: Client, settings: Any) -> None:
    settings.VOICE_MONITOR_AUDIO = True  # the Listen and mute buttons
    staff = User.objects.create_user("mon", password="pw-mon-12345", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="monitor_livesession"))
    row = LiveSession.objects.create(
        user=staff, worker="w", channel_name="c", last_seen=timezone.now()
    )
    client.force_login(staff)
    ids = page_ids(client, reverse("assistant:monitor", args=[row.pk]))
    assert looked_up("monitor.js", "session-view.js") <= set(ids), ids
    assert all(count == 1 for count in ids.values()), ids
