"""The websocket consumers: voice conversations, live monitors, and their shared socket loop."""
