"""Create the demo login if it does not exist, and print its credentials."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

CREDENTIALS_FILE = Path(settings.BASE_DIR) / "var" / "demo-credentials.txt"


class Command(BaseCommand):
    help = (
        "Create the demo user (an administrator, so the admin console works too) unless it "
        "exists. Credentials come from DEMO_USERNAME / DEMO_PASSWORD, or are generated once and "
        "kept in var/demo-credentials.txt."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DEMO_USERNAME") or "demo"
        password = os.environ.get("DEMO_PASSWORD") or self._stored_password(username)
        users = get_user_model().objects
        if not users.filter(username=username).exists():
            users.create_superuser(username=username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(f"Created the demo user {username!r}."))
        elif os.environ.get("DEMO_PASSWORD"):
            user = users.get(username=username)
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"Log in as   {username} / {password}")

    def _stored_password(self, username: str) -> str:
        if CREDENTIALS_FILE.exists():
            stored_user, _, stored_password = CREDENTIALS_FILE.read_text().strip().partition(":")
            if stored_user == username and stored_password:
                return stored_password
        password = secrets.token_urlsafe(9)
        CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
        CREDENTIALS_FILE.write_text(f"{username}:{password}\n")
        CREDENTIALS_FILE.chmod(0o600)
        return password
