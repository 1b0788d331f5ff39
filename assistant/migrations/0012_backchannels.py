"""Backchannels: a per-profile switch and per-language word lists (issue 21)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('assistant', '0011_turn_taking'),
    ]

    operations = [
        migrations.AddField(
            model_name='assistantprofile',
            name='backchannel_words',
            field=models.TextField(blank=True, default="en: mhm, mmhm, mhmm, mm-hmm, uh-huh, hmm, hm, mm, uh, um, yeah, yep, yup, yes, okay, ok, right, alright, all right, sure, i see, oh, ah, aha, cool, great, nice, wow, true, exactly, got it\nfr: mhm, hmm, mm, ouais, oui, ok, okay, d'accord, bien sûr, ah, oh, voilà, exactement, c'est ça, je vois", help_text='One language a line: “en: mhm, uh-huh, yeah, okay”. Speech over a reply made only of these words (or of no words: a cough) does not interrupt it.', verbose_name='backchannel words'),
        ),
        migrations.AddField(
            model_name='assistantprofile',
            name='backchannels',
            field=models.BooleanField(default=True, help_text='With barge-in on: a short “mhm”, “yeah” or a cough over a reply does not stop it (it plays on, ducked, while the words are checked). Needs a transcription model.', verbose_name='let backchannels through'),
        ),
    ]
