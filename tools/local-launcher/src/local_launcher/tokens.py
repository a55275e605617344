"""Demo tokens for the local system."""

import time

import jwt

DEMO_TOKEN_LIFETIME = 30 * 24 * 3600


def make_token(secret: str, user_id: str, *, admin: bool = False, lifetime: int = DEMO_TOKEN_LIFETIME) -> str:
    claims = {"sub": user_id, "exp": int(time.time()) + lifetime}
    if admin:
        claims["role"] = "admin"
    return jwt.encode(claims, secret, algorithm="HS256")
