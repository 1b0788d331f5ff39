"""The Voice Live wire protocol: events, errors, and the session configuration a client sends."""
