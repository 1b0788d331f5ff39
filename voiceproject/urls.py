"""Top-level URLs: admin, accounts, ops endpoints and the assistant app."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from assistant.auth import ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("history/", include("assistant.history.urls")),
    path("", include("assistant.urls")),
]
