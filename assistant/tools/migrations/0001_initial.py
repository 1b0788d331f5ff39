"""The tools models, taken over from the ``assistant`` app with their tables, content types and
permissions (``assistant`` migration 0010 let them go).
"""

import assistant.tools.models
import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

#: Their content types (and so the permissions and admin log entries attached to them) move too.
MODELS = ["knowledgebase", "knowledgedocument", "tool"]


def content_types_move(from_label, to_label):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        taken = set(
            types.filter(app_label=to_label, model__in=MODELS).values_list("model", flat=True)
        )
        types.filter(app_label=from_label, model__in=set(MODELS) - taken).update(
            app_label=to_label
        )

    return move


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('assistant', '0010_history_and_tools_apps'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='KnowledgeBase',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200, unique=True, verbose_name='name')),
                        ('description', models.TextField(blank=True, verbose_name='description')),
                        ('profiles', models.ManyToManyField(blank=True, help_text='Profiles whose knowledge-base search tool searches these documents.', related_name='knowledge_bases', to='assistant.assistantprofile', verbose_name='profiles')),
                    ],
                    options={
                        'verbose_name': 'knowledge base',
                        'verbose_name_plural': 'knowledge bases',
                        'db_table': 'assistant_knowledgebase',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='KnowledgeDocument',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=300, verbose_name='title')),
                        ('text', models.TextField(verbose_name='text')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                        ('knowledge_base', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='documents', to='tools.knowledgebase', verbose_name='knowledge base')),
                    ],
                    options={
                        'verbose_name': 'document',
                        'verbose_name_plural': 'documents',
                        'db_table': 'assistant_knowledgedocument',
                        'ordering': ['knowledge_base', 'title'],
                    },
                ),
                migrations.CreateModel(
                    name='Tool',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(help_text='The function name the model calls (built-ins: filled in for you).', max_length=64, unique=True, validators=[assistant.tools.models.validate_tool_name], verbose_name='name')),
                        ('kind', models.CharField(choices=[('builtin', 'Built-in'), ('http', 'HTTP request'), ('mcp', 'MCP server (Azure only)')], max_length=16, verbose_name='kind')),
                        ('builtin', models.CharField(blank=True, choices=[('get_current_time', 'Current date and time'), ('search_knowledge_base', 'Knowledge base search'), ('end_conversation', 'End the conversation'), ('hand_over', 'Hand over to another profile')], max_length=64, verbose_name='built-in tool')),
                        ('description', models.TextField(blank=True, help_text='What the model reads to decide when to call it (built-ins have their own).', verbose_name='description')),
                        ('parameters', models.JSONField(blank=True, default=dict, help_text='An object schema, e.g. {"type": "object", "properties": {...}}.', verbose_name='parameters (JSON schema)')),
                        ('is_enabled', models.BooleanField(default=True, verbose_name='enabled')),
                        ('requires_approval', models.BooleanField(default=False, help_text='The page asks the user (by voice or a click) before the tool runs.', verbose_name='user approves each call')),
                        ('interim_phrase', models.CharField(blank=True, help_text='Spoken while the tool runs, e.g. “Let me check…”.', max_length=200, verbose_name='interim phrase')),
                        ('timeout_seconds', models.FloatField(default=8.0, validators=[django.core.validators.MinValueValidator(0.5), django.core.validators.MaxValueValidator(30.0)], verbose_name='timeout (s)')),
                        ('http_method', models.CharField(choices=[('GET', 'GET'), ('POST', 'POST'), ('PUT', 'PUT'), ('PATCH', 'PATCH'), ('DELETE', 'DELETE')], default='GET', max_length=8, verbose_name='method')),
                        ('url_template', models.CharField(blank=True, help_text='e.g. https://api.example.com/orders/{order_id}: arguments fill the path.', max_length=2000, verbose_name='URL template')),
                        ('headers', models.JSONField(blank=True, default=dict, help_text='Plain headers as a JSON object. Secrets go in the secret headers below.', verbose_name='headers')),
                        ('secret_headers', models.TextField(blank=True, editable=False, verbose_name='secret headers (encrypted)')),
                        ('allow_private_network', models.BooleanField(default=False, help_text='Let this tool reach its host even if it resolves to a private, loopback or link-local address (an internal service you trust).', verbose_name='allow a private address')),
                        ('max_response_bytes', models.PositiveIntegerField(default=65536, validators=[django.core.validators.MinValueValidator(256), django.core.validators.MaxValueValidator(1048576)], verbose_name='largest response (bytes)')),
                        ('mcp_server_url', models.URLField(blank=True, verbose_name='MCP server URL')),
                        ('mcp_allowed_tools', models.JSONField(blank=True, default=list, help_text="A JSON list of tool names; empty: all the server's tools.", verbose_name='MCP allowed tools')),
                        ('mcp_require_approval', models.CharField(choices=[('never', 'Never ask'), ('always', 'Always ask')], default='always', max_length=8, verbose_name='MCP approval')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                        ('profiles', models.ManyToManyField(blank=True, related_name='tools', to='assistant.assistantprofile', verbose_name='profiles')),
                    ],
                    options={
                        'verbose_name': 'tool',
                        'verbose_name_plural': 'tools',
                        'db_table': 'assistant_tool',
                        'ordering': ['name'],
                        'permissions': [('manage_tool_secrets', 'Can reference environment secrets and private networks')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_types_move("assistant", "tools"),
            content_types_move("tools", "assistant"),
        ),
    ]
