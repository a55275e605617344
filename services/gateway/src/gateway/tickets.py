"""Single-use, short-lived tickets that open the live-events WebSocket.

Browsers cannot set headers on a WebSocket, so the socket's credential goes in its URL, and URLs
end up in logs (proxies', servers'). A ticket there is harmless: it opens one socket, within
`lifetime`, and nothing else. It is a JWT signed with a key derived from JWT_SECRET, so it is no
bearer token anywhere else. Single use is remembered per gateway process: behind several gateway
replicas a ticket could open one socket on each of them within its lifetime.
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import timedelta

import jwt

from fleet_shared.http import ApiError

from .auth import ALGORITHM, Principal

TICKET_KEY_CONTEXT = b"waha-fleet websocket ticket v1"
DEFAULT_LIFETIME = timedelta(seconds=30)


def _refused(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


class TicketIssuer:
    def __init__(
        self, jwt_secret: str, lifetime: timedelta = DEFAULT_LIFETIME, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(jwt_secret.encode(), TICKET_KEY_CONTEXT, hashlib.sha256).digest()
        self.lifetime = lifetime.total_seconds()
        self._clock = clock
        self._used: dict[str, float] = {}  # ticket id -> when it expires

    def issue(self, principal: Principal) -> str:
        """A ticket for `principal`; the socket it opens still closes when the token expires."""
        now = self._clock()
        claims = {
            "sub": principal.user_id,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(16),
            "tokenExp": principal.expires_at if principal.expires_at != float("inf") else None,
        }
        if principal.role:
            claims["role"] = principal.role
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def redeem(self, ticket: str) -> Principal:
        """The principal a ticket was issued to, once; 401 `invalid_ticket` / `ticket_expired` after."""
        now = self._clock()
        try:
            claims = jwt.decode(
                ticket, self._key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "jti"], "verify_exp": False}
            )
        except (jwt.InvalidTokenError, OverflowError, ValueError) as exc:
            raise _refused("invalid_ticket", "the ticket is not one this gateway issued") from exc
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= now:
            raise _refused("ticket_expired", "the ticket has expired: ask for a new one")
        self._forget_expired(now)
        jti = str(claims["jti"])
        if jti in self._used:
            raise _refused("invalid_ticket", "the ticket was used already: ask for a new one")
        self._used[jti] = float(claims["exp"])
        role, token_exp = claims.get("role"), claims.get("tokenExp")
        return Principal(
            user_id=str(claims["sub"]),
            role=role if isinstance(role, str) else None,
            expires_at=float(token_exp) if isinstance(token_exp, int | float) else float("inf"),
        )

    def _forget_expired(self, now: float) -> None:
        for jti in [j for j, exp in self._used.items() if exp <= now]:
            del self._used[jti]
