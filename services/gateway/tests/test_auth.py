"""JWT verification (ADR 0012), at the verifier and through the HTTP API."""

import time
from datetime import timedelta

import jwt
import pytest

from fleet_shared.http import ApiError
from gateway.auth import TokenVerifier


@pytest.fixture
def verifier(tokens) -> TokenVerifier:
    return TokenVerifier(tokens.secret)


def rejected(verifier: TokenVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        verifier.verify(token)
    assert info.value.status == 401
    return info.value


def test_valid_token_gives_the_sub_as_user_id(verifier, tokens):
    principal = verifier.verify(tokens.make("alice_01-X"))
    assert principal.user_id == "alice_01-X"
    assert not principal.is_admin


def test_admin_role(verifier, tokens):
    assert verifier.verify(tokens.make("ops", role="admin")).is_admin
    assert not verifier.verify(tokens.make("ops", role="user")).is_admin
    assert not verifier.verify(tokens.make("ops", role=["admin"])).is_admin


def test_expired_token(verifier, tokens):
    assert rejected(verifier, tokens.make(expires_in=-5)).code == "token_expired"


def test_token_signed_with_another_key(verifier, tokens):
    assert rejected(verifier, tokens.make(secret="another-secret-0123456789-abcdefghij")).code == "invalid_token"


def test_tampered_payload(verifier, tokens):
    header, _, signature = tokens.make("alice").split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"bob","exp":9999999999}').decode()
    assert rejected(verifier, f"{header}.{forged_payload}.{signature}").code == "invalid_token"


def test_alg_none_is_refused(verifier):
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, None, algorithm="none")
    assert rejected(verifier, unsigned).code == "invalid_token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_are_refused_even_with_the_right_key(verifier, tokens, algorithm):
    assert rejected(verifier, tokens.make(algorithm=algorithm)).code == "invalid_token"


def test_missing_sub(verifier, tokens):
    err = rejected(verifier, tokens.make(None))
    assert err.code == "invalid_token" and "sub" in err.message


def test_missing_exp(verifier, tokens):
    err = rejected(verifier, tokens.make("alice", expires_in=None))
    assert err.code == "invalid_token" and "exp" in err.message


@pytest.mark.parametrize("sub", ["", "a.b", "a*", "user#1", "al ice", "ünï", "a/b", "x" * 65, "user.*.#"])
def test_sub_with_characters_that_would_break_routing(verifier, tokens, sub):
    assert rejected(verifier, tokens.make(sub)).code == "invalid_token"


def test_non_string_sub(verifier, tokens):
    assert rejected(verifier, tokens.make(12345)).code == "invalid_token"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x"])
def test_garbage(verifier, garbage):
    assert rejected(verifier, garbage).code == "invalid_token"


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        TokenVerifier("")


def test_a_token_living_longer_than_the_maximum_is_refused(tokens):
    verifier = TokenVerifier(tokens.secret, max_lifetime=timedelta(days=1))
    assert verifier.verify(tokens.make("alice", expires_in=86_000)).user_id == "alice"
    err = rejected(verifier, tokens.make("alice", expires_in=86_500))
    assert err.code == "invalid_token" and "JWT_MAX_LIFETIME" in err.message


def test_a_token_expiring_in_the_year_9999_is_refused(verifier, tokens):
    assert rejected(verifier, tokens.make("alice", expires_in=None, exp=253_402_300_799)).code == "invalid_token"


@pytest.mark.parametrize("number", [10**400, float("inf"), 1e300, 2**64])
def test_absurd_numbers_in_a_signed_token_are_401_not_500(verifier, tokens, number):
    assert rejected(verifier, tokens.make("alice", expires_in=None, exp=number)).code == "invalid_token"
    assert rejected(verifier, tokens.make("alice", expires_in=None, exp=-number)).code in ("invalid_token", "token_expired")
    assert rejected(verifier, tokens.make("alice", nbf=number)).code == "invalid_token"
    assert rejected(verifier, tokens.make("alice", iat=number)).code == "invalid_token"


def test_audience_and_issuer_when_configured(tokens):
    verifier = TokenVerifier(tokens.secret, audience="waha-fleet", issuer="https://id.example.com")
    good = tokens.make("alice", aud="waha-fleet", iss="https://id.example.com")
    assert verifier.verify(good).user_id == "alice"
    for claims, word in (({"iss": "https://id.example.com"}, "aud"), ({"aud": "waha-fleet"}, "iss"),
                         ({"aud": "crm", "iss": "https://id.example.com"}, "audience"),
                         ({"aud": "waha-fleet", "iss": "https://evil.example.com"}, "issuer")):
        err = rejected(verifier, tokens.make("alice", **claims))
        assert err.code == "invalid_token" and word in err.message, claims
    # Not configured: `aud` and `iss` are not looked at.
    assert TokenVerifier(tokens.secret).verify(tokens.make("alice", aud="anything")).user_id == "alice"


# Through HTTP: no broker is needed to refuse a request.


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_no_authorization_header(offline_gateway):
    response = await offline_gateway.get("/api/v1/waha/status")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_not_a_bearer_scheme(offline_gateway):
    assert_error(await offline_gateway.get("/api/v1/waha/status", headers={"Authorization": "Basic YTpi"}), 401, "unauthorized")


async def test_expired_and_invalid_tokens_over_http(offline_gateway, tokens):
    response = await offline_gateway.get("/api/v1/waha/status", headers=tokens.auth("alice", expires_in=-1))
    assert_error(response, 401, "token_expired")
    response = await offline_gateway.get("/api/v1/waha/status", headers=tokens.auth("alice", expires_in=None, exp=10**400))
    assert_error(response, 401, "invalid_token")
    response = await offline_gateway.get("/api/v1/waha/chats", headers=tokens.auth("alice", secret="x" * 40))
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize(
    "path", ["/api/v1/admin/sessions", "/api/v1/admin/sessions/count", "/api/v1/admin/sessions/alice"]
)
async def test_admin_endpoints_need_the_admin_role(offline_gateway, tokens, path):
    assert_error(await offline_gateway.get(path), 401, "unauthorized")
    assert_error(await offline_gateway.get(path, headers=tokens.auth("alice")), 403, "forbidden")
    assert_error(await offline_gateway.get(path, headers=tokens.auth("alice", role="user")), 403, "forbidden")
    assert_error(await offline_gateway.get(path, headers=tokens.auth("ops", role="admin")), 503, "broker_unavailable")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_until_it_expires(tokens):
    clock = Clock()
    verifier = TokenVerifier(tokens.secret, clock=clock)
    token = tokens.make("alice", expires_in=60)
    first = verifier.verify(token)
    assert verifier.verify(token) is first  # served from the cache, not decoded again
    clock.now = first.expires_at - 0.001
    assert verifier.verify(token) is first
    clock.now = first.expires_at  # PyJWT's rule: refused once now >= exp + leeway
    assert rejected(verifier, token).code == "token_expired"


def test_refused_tokens_are_never_remembered(verifier, tokens):
    header, _, signature = tokens.make("alice").split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"bob","exp":9999999999}').decode()
    for token in (f"{header}.{forged_payload}.{signature}", tokens.make("alice", expires_in=-5)):
        first = rejected(verifier, token).code
        assert rejected(verifier, token).code == first
    assert not verifier._verified


def test_the_cache_is_bounded(tokens):
    verifier = TokenVerifier(tokens.secret, cache_size=3)
    users = [f"user_{i}" for i in range(5)]
    for user in users:
        assert verifier.verify(tokens.make(user)).user_id == user
    assert len(verifier._verified) == 3
    assert [p.user_id for p in verifier._verified.values()] == users[2:]  # the oldest went first


def test_a_fractional_exp_expires_when_pyjwt_says(tokens):
    exp = time.time() + 60.7
    token = jwt.encode({"sub": "alice", "exp": exp}, tokens.secret, algorithm="HS256")
    clock = Clock()
    verifier = TokenVerifier(tokens.secret, clock=clock)
    verifier.verify(token)
    clock.now = int(exp) + 0.1  # PyJWT compares int(exp): refused from here on, cached or not
    assert rejected(verifier, token).code == "token_expired"
