"""webhook-dispatcher: delivers each user's event stream to the URLs they registered (docs/api.md, "Webhooks")."""
