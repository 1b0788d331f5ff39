"""Conversations that last: the transcript of every session, its usage ledger and quotas.

The Django side of the history feature (issue 13): models, the user's *My conversations* pages,
the admin, cost estimates and reports. What a live session records reaches these tables
through a batched writer, never from the audio path.
"""
