"""Client identity: verify the bearer JWT and turn it into a `Principal`.

The user id comes from the token's `sub` and nowhere else (ADR 0012).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from fleet_shared.http import ApiError
from fleet_shared.ids import USER_ID_RE

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
# Verified tokens remembered (each client sends the same token with every call; checking its
# HMAC and claims again costs more CPU than the rest of the gateway's share of a request).
VERIFIED_CACHE_SIZE = 4096
# Tokens whose `exp` is further away than this are refused (a token minted to live for ever).
DEFAULT_MAX_LIFETIME = timedelta(days=30)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str | None = None
    # Unix time after which the token is refused (its `exp` plus the tolerated clock skew).
    expires_at: float = float("inf")

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers=_CHALLENGE)


class TokenVerifier:
    """Verifies bearer tokens; a token that verified is remembered until its `exp` (plus leeway).

    Equivalent to verifying every time: the signature, `sub` and `role` of a given token string never
    change, `nbf`/`iat` only ever become valid, and `exp` is checked against the clock on every use.
    Only tokens that verified are remembered, at most `cache_size` of them (the oldest go first)."""

    def __init__(
        self,
        secret: str,
        leeway: timedelta = timedelta(0),
        *,
        max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
        audience: str | None = None,
        issuer: str | None = None,
        cache_size: int = VERIFIED_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a JWT secret is required")
        self._secret = secret
        self._leeway = leeway
        self._max_lifetime = max_lifetime.total_seconds()
        self._audience = audience
        self._issuer = issuer
        self._cache_size = cache_size
        self._clock = clock
        self._verified: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        """The token's principal, or `ApiError` 401 (`token_expired` / `invalid_token`)."""
        principal = self._verified.get(token)
        if principal is not None:
            # PyJWT refuses a token once now >= exp + leeway; `expires_at` is exp + leeway.
            if self._clock() < principal.expires_at:
                return principal
            del self._verified[token]
            raise _unauthorized("token_expired", "the token has expired")
        principal = self._decode(token)
        if self._cache_size > 0:
            if len(self._verified) >= self._cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        required = ["exp", "sub", *(["aud"] if self._audience else []), *(["iss"] if self._issuer else [])]
        try:
            # Only HS256 is accepted: `alg: none` and every other algorithm fail here.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": required, "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("token_expired", "the token has expired") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized("invalid_token", f"the token has no '{exc.claim}' claim") from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized("invalid_token", "the token is not for this audience (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise _unauthorized("invalid_token", "the token is not from the expected issuer (iss)") from exc
        except (jwt.InvalidTokenError, OverflowError, ValueError) as exc:
            # OverflowError/ValueError: a number no clock holds (`exp: 1e400`) in a signed token.
            raise _unauthorized("invalid_token", "the token is not valid") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not USER_ID_RE.fullmatch(sub):
            raise _unauthorized("invalid_token", "the token's 'sub' must match ^[A-Za-z0-9_-]{1,64}$")
        role = claims.get("role")
        exp = int(claims["exp"])  # PyJWT compares int(exp)
        if exp > self._clock() + self._max_lifetime + self._leeway.total_seconds():
            raise _unauthorized("invalid_token", "the token lives longer than this gateway accepts (JWT_MAX_LIFETIME)")
        expires_at = exp + self._leeway.total_seconds()
        return Principal(user_id=sub, role=role if isinstance(role, str) else None, expires_at=expires_at)


def principal_from_header(verifier: TokenVerifier, header: str | None) -> Principal:
    """The principal of an `Authorization: Bearer <token>` header, or `ApiError` 401."""
    if not header:
        raise _unauthorized("unauthorized", "missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("unauthorized", "use 'Authorization: Bearer <token>'")
    return verifier.verify(token.strip())


# Where `guard.RequestGuard` leaves the principal it verified (in the request's scope state).
PRINCIPAL_STATE = "principal"


class BearerPrincipal(HTTPBearer):
    """The `HTTPBearer` security scheme (as OpenAPI shows it) whose value is the request's principal:
    the one `guard.RequestGuard` verified before the body was read, else verified here."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = request.scope.get("state", {}).get(PRINCIPAL_STATE)
        if isinstance(principal, Principal):
            return principal
        return principal_from_header(request.app.state.token_verifier, request.headers.get("authorization"))


current_principal = BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer", description="HS256 JWT; `sub` is the user id"
)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "forbidden", "an admin token is required")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
AdminUser = Annotated[Principal, Depends(admin_principal)]
