from __future__ import annotations

from django.urls import path

from assistant.history import views

app_name = "history"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("export.json", views.export_all, name="export_all"),
    path("delete/", views.conversation_delete_all, name="delete_all"),
    path("<uuid:conversation_id>/", views.conversation_detail, name="detail"),
    path("<uuid:conversation_id>/delete/", views.conversation_delete, name="delete"),
    path(
        "<uuid:conversation_id>/export.<str:fmt>",
        views.conversation_export,
        name="export",
    ),
]
