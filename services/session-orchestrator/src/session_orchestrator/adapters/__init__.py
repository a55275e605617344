"""What the orchestrator talks to: WAHA over HTTP, MongoDB, the broker (`ports` says what each must do)."""
