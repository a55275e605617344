"""How work reaches the handlers: broker subscribers, and the background jobs."""
