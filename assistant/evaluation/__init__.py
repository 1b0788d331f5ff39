"""Replay evaluation (issue 23): a profile's draft or version against another, on real turns.

Staff replay the user turns of a profile's recent conversations (those that kept transcripts)
or of a saved test set against two configurations of the profile, turn by turn, on the
configured engine; checks attached to a set are scored on both sides. The replay runs in a
background process of its own (``manage.py run_evaluations``), one run per profile at a time,
cancellable, resumed after a restart. Models, the runner and the report live here; the admin
pages in ``assistant/admin/evaluation.py``; ``docs/evaluation.md`` is the admin's guide.
"""
