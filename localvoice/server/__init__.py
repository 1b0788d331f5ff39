"""The server: the aiohttp app, one connection per client, and the session it serves."""
