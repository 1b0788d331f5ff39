from django.db import migrations

DEFAULT_INSTRUCTIONS = (
    "You are a friendly, helpful voice assistant. Answer in one or two short spoken sentences, "
    "in plain words without lists or markup. If you are not sure, say so."
)


def create_default_profile(apps, schema_editor):
    AssistantProfile = apps.get_model("assistant", "AssistantProfile")
    if not AssistantProfile.objects.filter(is_default=True).exists():
        AssistantProfile.objects.create(
            name="Friendly assistant",
            instructions=DEFAULT_INSTRUCTIONS,
            voice="en-US-Ava:DragonHDLatestNeural",
            is_default=True,
        )


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial")]

    operations = [migrations.RunPython(create_default_profile, migrations.RunPython.noop)]
