"""Dev secrets: generated once per checkout and kept in .local/, so tokens survive restarts."""

import secrets
from pathlib import Path

from fleet_shared.settings import DEV_SECRET_PREFIX

SECRET_NAMES = ("JWT_SECRET", "WAHA_API_KEY", "WEBHOOK_HMAC_KEY")


def load_or_create(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    changed = False
    for name in SECRET_NAMES:
        if not values.get(name):
            values[name] = DEV_SECRET_PREFIX + secrets.token_urlsafe(24)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values
