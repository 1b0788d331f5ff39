from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0007_history_live"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="tool",
            options={
                "ordering": ["name"],
                "permissions": [
                    (
                        "manage_tool_secrets",
                        "Can reference environment secrets and private networks",
                    )
                ],
                "verbose_name": "tool",
                "verbose_name_plural": "tools",
            },
        ),
    ]
