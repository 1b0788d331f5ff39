"""The default profile's instructions say what the assistant cannot know without a tool.

Measured on the offline engine's default model (Qwen2.5-0.5B): with the old text it made up
the time, the date, the weather and the news (0 of 8 such questions declined); with this one
it declines or calls the clock tool (docs/logbook/benchmarks.md, issue 24). Only a profile
still carrying the old text word for word is changed: an admin's own wording is kept.
"""

from django.db import migrations

OLD_INSTRUCTIONS = (
    "You are a friendly, helpful voice assistant. Answer in one or two short spoken sentences, "
    "in plain words without lists or markup. If you are not sure, say so."
)
NEW_INSTRUCTIONS = OLD_INSTRUCTIONS + (
    " Important: you cannot see a clock, a calendar or the internet yourself. For the time, "
    "the date, the year, the weather or the news, use a tool if you have one; without one, "
    "say: Sorry, I have no way to know that."
)


def instructions_update(old, new):
    def update(apps, schema_editor):
        profiles = apps.get_model("assistant", "AssistantProfile").objects
        profiles.filter(instructions=old).update(instructions=new)

    return update


class Migration(migrations.Migration):
    dependencies = [("assistant", "0012_backchannels")]

    operations = [
        migrations.RunPython(
            instructions_update(OLD_INSTRUCTIONS, NEW_INSTRUCTIONS),
            instructions_update(NEW_INSTRUCTIONS, OLD_INSTRUCTIONS),
        )
    ]
