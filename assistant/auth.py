"""Login with throttling: repeated failures lock the username and the address for a while."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)


def _client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    return str(request.META.get("REMOTE_ADDR", "unknown"))


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing to check passwords after too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": _("Too many failed attempts. Try again in a few minutes."),
    }

    def _keys(self) -> list[str]:
        username = (self.data.get("username") or "").strip().lower()[:150]
        return [f"login-fail:user:{username}", f"login-fail:ip:{_client_address(self.request)}"]

    def _throttled(self) -> bool:
        limit = settings.LOGIN_FAILURE_LIMIT
        try:
            return any((cache.get(key) or 0) >= limit for key in self._keys())
        except Exception:
            # The shared counter is unreachable (Redis down): logging in beats locking everyone
            # out; the password check itself still applies.
            logger.warning("login throttle unavailable; checking the password anyway")
            return False

    def _count_failure(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW
        for key in self._keys():
            try:
                if not cache.add(key, 1, timeout=window):
                    cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout=window)  # expired between add and incr
            except Exception:
                logger.warning("login throttle unavailable; failure not counted")
                return

    def clean(self) -> dict[str, Any]:
        """Check the throttle first, then the password; count failures."""
        if self._throttled():
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except ValidationError:
            self._count_failure()
            raise


class ThrottledLoginView(LoginView):
    """The login page, with :class:`ThrottledAuthenticationForm`."""

    form_class = ThrottledAuthenticationForm
