"""Session orchestrator: owns each user's WAHA session lifecycle; the only service that talks to WAHA."""
