"""Turn-taking, language and vocabulary settings per profile (issue 21).

Every new field has a default that changes nothing for existing profiles: end-of-utterance
detection left to Voice Live (absent from the request, as before), no detection languages, no
phrase list, Voice Live's own defaults elsewhere.
"""

import assistant.turn_taking
import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('assistant', '0010_history_and_tools_apps'),
    ]

    operations = [
        migrations.AddField(
            model_name='assistantprofile',
            name='auto_truncate',
            field=models.BooleanField(default=False, help_text="When a user interrupts, cut the assistant's reply in the conversation where the user stopped hearing it, so the model does not believe it said the rest.", verbose_name='forget the unheard reply'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='eou_model',
            field=models.CharField(blank=True, choices=[('', "Voice Live's default for the detection type"), ('off', 'Off: a pause of the silence duration ends the turn'), ('semantic_detection_v1', 'Semantic detection (English)'), ('semantic_detection_v1_en', 'Semantic detection, optimised for English'), ('semantic_detection_v1_multilingual', 'Semantic detection (multilingual)')], default='', help_text="After a pause, a model judges from the words whether the user has finished (“I would like to…” has not). Fewer cut-offs; it runs at every pause. Not available with gpt-realtime models. Voice Live's default may turn it on with the semantic modes; Off makes sure it is not.", max_length=40, verbose_name='end-of-utterance detection'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='eou_threshold_level',
            field=models.CharField(choices=[('default', "Voice Live's default"), ('low', 'Low: ends turns readily (quicker answers)'), ('medium', 'Medium'), ('high', 'High: waits for a clear ending (fewer cut-offs)')], default='default', help_text='How sure the detector must be that the user has finished: low answers sooner, high waits for a clear ending and cuts fewer people off.', max_length=10, verbose_name='end-of-utterance threshold'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='eou_timeout_ms',
            field=models.PositiveIntegerField(blank=True, help_text="The longest the detector waits for an unfinished sentence to go on, 100-10000 ms; after that the turn ends anyway. Empty: Voice Live's default.", null=True, validators=[django.core.validators.MinValueValidator(100), django.core.validators.MaxValueValidator(10000)], verbose_name='end-of-utterance timeout (ms)'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='phrase_list',
            field=models.TextField(blank=True, help_text='Names and terms the transcription should expect (people, products, places), one per line, at most 500. azure-speech only; not with gpt-realtime models.', validators=[assistant.turn_taking.validate_phrase_list], verbose_name='phrase list'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='vad_languages',
            field=models.CharField(blank=True, help_text='Semantic VAD and multilingual semantic VAD only: the languages users speak, e.g. en,fr, so filler words are recognised in them. Empty: no restriction.', max_length=100, validators=[assistant.turn_taking.validate_language_list], verbose_name='detection languages'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='vad_speech_duration_ms',
            field=models.PositiveIntegerField(blank=True, help_text="Semantic VAD only: sound shorter than this (a click, a cough) starts no turn, 0-2000 ms. Empty: Voice Live's default (80 ms).", null=True, validators=[django.core.validators.MaxValueValidator(2000)], verbose_name='minimum speech (ms)'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='input_transcription_language',
            field=models.CharField(blank=True, help_text='The language users speak, e.g. en or en-US, or several to detect among: en,fr. Empty: left to Voice Live; naming the language is more accurate.', max_length=40, validators=[assistant.turn_taking.validate_language_list], verbose_name='transcription language'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='remove_filler_words',
            field=models.BooleanField(default=False, help_text='Semantic VAD only: “um”, “uh” or “yeah” while the assistant speaks do not interrupt it.', verbose_name='remove filler words'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='turn_detection',
            field=models.CharField(choices=[('server_vad', 'Server VAD (silence based)'), ('azure_semantic_vad', 'Azure semantic VAD'), ('azure_semantic_vad_en', 'Azure semantic VAD (English)'), ('azure_semantic_vad_multilingual', 'Azure semantic VAD (multilingual)')], default='server_vad', help_text='How the service decides when a user starts and stops speaking. Server VAD listens for sound and silence; the semantic modes also weigh the words (pick the English, English-optimised or multilingual one to match your users). Not used in push-to-talk.', max_length=40, verbose_name='turn detection'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='vad_prefix_padding_ms',
            field=models.PositiveIntegerField(default=300, help_text='Audio kept from just before speech was noticed, 0-2000 ms, so the first syllable is not lost.', validators=[django.core.validators.MaxValueValidator(2000)], verbose_name='prefix padding (ms)'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='vad_silence_duration_ms',
            field=models.PositiveIntegerField(default=500, help_text="How long a pause ends the user's turn, 100-5000 ms. Shorter answers faster but cuts off people who pause mid-thought; end-of-utterance detection below helps too.", validators=[django.core.validators.MinValueValidator(100), django.core.validators.MaxValueValidator(5000)], verbose_name='silence duration (ms)'),
        ),
        migrations.AlterField(
            model_name='assistantprofile',
            name='vad_threshold',
            field=models.FloatField(default=0.5, help_text='How loud or clear speech must be to count, 0.0-1.0. Raise it in noisy rooms; lower it for quiet speakers.', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='VAD threshold'),
        ),
    ]
