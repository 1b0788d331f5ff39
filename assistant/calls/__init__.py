"""One browser's live voice call: everything between the websocket and the Voice Live session."""
