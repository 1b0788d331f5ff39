"""The history models, taken over from the ``assistant`` app with their tables, content types
and permissions (``assistant`` migration 0010 let them go).
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import uuid
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models

#: Their content types (and so the permissions and admin log entries attached to them) move too.
MODELS = ["conversation", "turn", "usagerecord", "modelprice", "usagequota"]


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
        ('auth', '0012_alter_user_first_name_max_length'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ModelPrice',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model', models.CharField(max_length=100, unique=True, verbose_name='model')),
                        ('currency', models.CharField(default='USD', max_length=3, verbose_name='currency')),
                        ('text_input', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='text input')),
                        ('audio_input', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='audio input')),
                        ('cached_input', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='cached input')),
                        ('text_output', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='text output')),
                        ('audio_output', models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=10, verbose_name='audio output')),
                    ],
                    options={
                        'verbose_name': 'model price',
                        'verbose_name_plural': 'model prices',
                        'db_table': 'assistant_modelprice',
                        'ordering': ['model'],
                    },
                ),
                migrations.CreateModel(
                    name='Conversation',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('profile_name', models.CharField(blank=True, max_length=200, verbose_name='profile name')),
                        ('model', models.CharField(blank=True, max_length=100, verbose_name='model')),
                        ('started_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='started')),
                        ('ended_at', models.DateTimeField(blank=True, null=True, verbose_name='ended')),
                        ('end_reason', models.CharField(blank=True, max_length=64, verbose_name='end reason')),
                        ('upstream_session_ids', models.JSONField(blank=True, default=list, help_text='One per upstream connection: a rollover adds one.', verbose_name='upstream session ids')),
                        ('transcript_stored', models.BooleanField(default=True, help_text='Off when the profile keeps usage only: the turns then have no text.', verbose_name='transcript stored')),
                        ('profile', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='conversations', to='assistant.assistantprofile', verbose_name='profile')),
                        ('resumed_from', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='continuations', to='history.conversation', verbose_name='continues')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='conversations', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                    ],
                    options={
                        'verbose_name': 'conversation',
                        'verbose_name_plural': 'conversations',
                        'db_table': 'assistant_conversation',
                        'ordering': ['-started_at'],
                    },
                ),
                migrations.CreateModel(
                    name='Turn',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('seq', models.PositiveIntegerField(verbose_name='order')),
                        ('role', models.CharField(choices=[('user', 'User (spoken)'), ('typed', 'User (typed)'), ('assistant', 'Assistant'), ('tool', 'Tool')], max_length=16, verbose_name='role')),
                        ('text', models.TextField(blank=True, verbose_name='text')),
                        ('item_id', models.CharField(blank=True, max_length=128, verbose_name='item id')),
                        ('response_id', models.CharField(blank=True, max_length=128, verbose_name='response id')),
                        ('started_at', models.DateTimeField(verbose_name='started')),
                        ('ended_at', models.DateTimeField(blank=True, null=True, verbose_name='ended')),
                        ('interrupted', models.BooleanField(default=False, verbose_name='interrupted')),
                        ('heard_ms', models.PositiveIntegerField(blank=True, help_text='For an interrupted reply: how much of it the user heard.', null=True, verbose_name='heard (ms)')),
                        ('latency_ms', models.PositiveIntegerField(blank=True, help_text="End of the user's speech to the first audio of this reply.", null=True, verbose_name='latency (ms)')),
                        ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='turns', to='history.conversation', verbose_name='conversation')),
                    ],
                    options={
                        'verbose_name': 'turn',
                        'verbose_name_plural': 'turns',
                        'db_table': 'assistant_turn',
                        'ordering': ['conversation', 'seq'],
                    },
                ),
                migrations.CreateModel(
                    name='UsageQuota',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('minutes_per_day', models.PositiveIntegerField(blank=True, help_text="Minutes of conversation audio both ways: the user's microphone plus the assistant's spoken replies, and typed messages at the time it takes to say them (at least 1 s each). A hands-free conversation in which the assistant speaks a third of the time uses about 1.3 minutes per minute. Empty: no limit.", null=True, validators=[django.core.validators.MinValueValidator(1)], verbose_name='minutes per day')),
                        ('minutes_per_month', models.PositiveIntegerField(blank=True, help_text="Minutes of conversation audio both ways: the user's microphone plus the assistant's spoken replies, and typed messages at the time it takes to say them (at least 1 s each). A hands-free conversation in which the assistant speaks a third of the time uses about 1.3 minutes per minute. Empty: no limit.", null=True, validators=[django.core.validators.MinValueValidator(1)], verbose_name='minutes per month')),
                        ('cost_per_month', models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0.01'))], verbose_name='estimated cost per month')),
                        ('group', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='usage_quotas', to='auth.group', verbose_name='group')),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='usage_quotas', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                    ],
                    options={
                        'verbose_name': 'usage quota',
                        'verbose_name_plural': 'usage quotas',
                        'db_table': 'assistant_usagequota',
                    },
                ),
                migrations.CreateModel(
                    name='UsageRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('session_id', models.UUIDField(db_index=True, verbose_name='session')),
                        ('profile_name', models.CharField(blank=True, max_length=200, verbose_name='profile name')),
                        ('model', models.CharField(max_length=100, verbose_name='model')),
                        ('kind', models.CharField(choices=[('response', 'Response'), ('accrued', 'Accrued since the last response')], default='response', help_text='Accrued: what the session used since its last response, updated while it is live (dated by its latest update).', max_length=16, verbose_name='kind')),
                        ('response_id', models.CharField(blank=True, max_length=128, verbose_name='response id')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='when')),
                        ('audio_in_seconds', models.FloatField(default=0.0, verbose_name='audio in (s)')),
                        ('audio_out_seconds', models.FloatField(default=0.0, verbose_name='audio out (s)')),
                        ('typed_seconds', models.FloatField(default=0.0, help_text='Typed messages, at the time it takes to say them (at least 1 s each).', verbose_name='typed (s)')),
                        ('input_tokens', models.PositiveIntegerField(default=0, verbose_name='input tokens')),
                        ('input_text_tokens', models.PositiveIntegerField(default=0, verbose_name='input text tokens')),
                        ('input_audio_tokens', models.PositiveIntegerField(default=0, verbose_name='input audio tokens')),
                        ('input_cached_tokens', models.PositiveIntegerField(default=0, verbose_name='cached input tokens')),
                        ('output_tokens', models.PositiveIntegerField(default=0, verbose_name='output tokens')),
                        ('output_text_tokens', models.PositiveIntegerField(default=0, verbose_name='output text tokens')),
                        ('output_audio_tokens', models.PositiveIntegerField(default=0, verbose_name='output audio tokens')),
                        ('estimated_cost', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=14, verbose_name='estimated cost')),
                        ('conversation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='usage_records', to='history.conversation', verbose_name='conversation')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_records', to=settings.AUTH_USER_MODEL, verbose_name='user')),
                    ],
                    options={
                        'verbose_name': 'usage record',
                        'verbose_name_plural': 'usage records',
                        'db_table': 'assistant_usagerecord',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddIndex(
                    model_name='conversation',
                    index=models.Index(fields=['user', '-started_at'], name='assistant_c_user_id_038e49_idx'),
                ),
                migrations.AddConstraint(
                    model_name='turn',
                    constraint=models.UniqueConstraint(fields=('conversation', 'seq'), name='turn_order_unique'),
                ),
                migrations.AddConstraint(
                    model_name='usagequota',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('group__isnull', True), ('user__isnull', False)), models.Q(('group__isnull', False), ('user__isnull', True)), _connector='OR'), name='quota_for_user_or_group'),
                ),
                migrations.AddConstraint(
                    model_name='usagequota',
                    constraint=models.UniqueConstraint(fields=('user',), name='one_quota_per_user'),
                ),
                migrations.AddConstraint(
                    model_name='usagequota',
                    constraint=models.UniqueConstraint(fields=('group',), name='one_quota_per_group'),
                ),
                migrations.AddIndex(
                    model_name='usagerecord',
                    index=models.Index(fields=['user', 'created_at'], name='assistant_u_user_id_02d73d_idx'),
                ),
                migrations.AddConstraint(
                    model_name='usagerecord',
                    constraint=models.UniqueConstraint(condition=models.Q(('kind', 'accrued')), fields=('session_id',), name='one_accrued_usage_per_session'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_types_move("assistant", "history"),
            content_types_move("history", "assistant"),
        ),
    ]
