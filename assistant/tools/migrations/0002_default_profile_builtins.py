"""The default profile offers the safe built-in tools: the clock and hanging up.

Without them the offline engine's model made the time up ("The time is 12:00." at 02:35 UTC,
issue 24). Only the profile the migrations created (the default one, under its first name)
gets them, and only if an admin has given it no tool yet: a deployment's own choice is kept.
"""

from django.db import migrations

SAFE_BUILTINS = ["get_current_time", "end_conversation"]
DEFAULT_PROFILE_NAME = "Friendly assistant"


def builtins_give(apps, schema_editor):
    Tool = apps.get_model("tools", "Tool")
    profile = (
        apps.get_model("assistant", "AssistantProfile")
        .objects.filter(is_default=True, name=DEFAULT_PROFILE_NAME)
        .first()
    )
    if profile is None or Tool.objects.filter(profiles=profile).exists():
        return
    for name in SAFE_BUILTINS:
        tool, _ = Tool.objects.get_or_create(
            name=name, defaults={"kind": "builtin", "builtin": name}
        )
        tool.profiles.add(profile)


def builtins_take_back(apps, schema_editor):
    Tool = apps.get_model("tools", "Tool")
    profile = (
        apps.get_model("assistant", "AssistantProfile")
        .objects.filter(is_default=True, name=DEFAULT_PROFILE_NAME)
        .first()
    )
    if profile is not None:
        for tool in Tool.objects.filter(name__in=SAFE_BUILTINS, profiles=profile):
            tool.profiles.remove(profile)


class Migration(migrations.Migration):
    dependencies = [
        ("tools", "0001_initial"),
        ("assistant", "0013_default_instructions"),
    ]

    operations = [migrations.RunPython(builtins_give, builtins_take_back)]
