"""The Voice Live relay: one browser session's upstream connection. No Django, no Channels."""
