"""Every existing profile gets version 1: its settings and tools as they are now (issue 23)."""

from django.db import migrations

#: The fields a version does not hold (assistant/models/versions.py), as of this migration.
UNVERSIONED_FIELDS = {
    "id",
    "name",
    "is_enabled",
    "is_default",
    "users",
    "groups",
    "keep_transcripts",
    "updated_at",
    "draft",
    "version",
}


def versions_create(apps, schema_editor):
    alias = schema_editor.connection.alias
    AssistantProfile = apps.get_model("assistant", "AssistantProfile")
    ProfileVersion = apps.get_model("assistant", "ProfileVersion")
    Tool = apps.get_model("tools", "Tool")
    names = [
        field.name
        for field in AssistantProfile._meta.concrete_fields
        if field.name not in UNVERSIONED_FIELDS
    ]
    for profile in AssistantProfile.objects.using(alias).filter(version=0):
        snapshot = {name: getattr(profile, name) for name in names}
        snapshot["tools"] = sorted(
            Tool.objects.using(alias).filter(profiles=profile).values_list("name", flat=True)
        )
        ProfileVersion.objects.using(alias).create(
            profile=profile, number=1, snapshot=snapshot, note="The settings before versions."
        )
        # update(): leaves updated_at alone, so live sessions see no change.
        AssistantProfile.objects.using(alias).filter(pk=profile.pk).update(version=1)


def versions_delete(apps, schema_editor):
    alias = schema_editor.connection.alias
    apps.get_model("assistant", "ProfileVersion").objects.using(alias).all().delete()
    apps.get_model("assistant", "AssistantProfile").objects.using(alias).update(version=0)


class Migration(migrations.Migration):

    dependencies = [
        ("assistant", "0014_profile_versions"),
        # The tools assigned to each profile go into its version 1.
        ("tools", "0002_default_profile_builtins"),
    ]

    operations = [migrations.RunPython(versions_create, versions_delete)]
