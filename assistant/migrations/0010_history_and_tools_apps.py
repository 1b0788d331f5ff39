"""The history and tools models move to their own apps (``history``, ``tools``).

State only: their tables keep their names (the models set ``db_table``), so no row moves. The
new apps' first migrations take the models over, with their content types and permissions.
"""

from django.db import migrations

#: Referencing models before the models they reference.
MOVED = [
    "Turn",
    "UsageRecord",
    "UsageQuota",
    "ModelPrice",
    "Conversation",
    "KnowledgeDocument",
    "Tool",
    "KnowledgeBase",
]


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0009_usage_accrual"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name) for name in MOVED],
            database_operations=[],
        ),
    ]
