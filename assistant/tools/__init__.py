"""Tools: what the assistant can do, chosen per profile by admins (issue 12).

``models`` holds the admin's configuration (built-in tools, HTTP tools, MCP servers,
knowledge bases); ``builtin/`` the tools shipped in code, one file each; ``specs`` turns a
profile's tools into the plain data a live session uses; ``runner`` runs a call (arguments
validated, off the event loop, bounded in time); ``http`` is the SSRF-guarded HTTP client.
"""
