"""Gateway settings: the common ones plus the key that verifies client tokens."""

import logging
import secrets
from datetime import timedelta
from typing import ClassVar

from pydantic import model_validator

from fleet_shared.settings import DEV_SECRET_PREFIX, Duration, FleetSettings

log = logging.getLogger(__name__)


class Settings(FleetSettings):
    port: int = 8080
    # HS256 key for client tokens; required (and not a dev key) outside dev.
    jwt_secret: str = ""
    # Clock skew tolerated on `exp`/`nbf`/`iat`.
    jwt_leeway: Duration = timedelta(0)

    secret_fields: ClassVar[tuple[str, ...]] = ("jwt_secret",)

    @model_validator(mode="after")
    def _dev_secret_when_unset(self) -> "Settings":
        if self.environment == "dev" and not self.jwt_secret:
            self.jwt_secret = DEV_SECRET_PREFIX + secrets.token_urlsafe(32)
            log.warning("JWT_SECRET unset: generated a random dev key; no client token will verify")
        return self
