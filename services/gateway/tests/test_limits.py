"""Per-user limits (issue 22.1): pending requests and a rate, per user, each answered 429 with Retry-After."""

import pytest

from fleet_shared.http import ApiError
from gateway.limits import UserLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(limits: UserLimits, user: str) -> ApiError:
    with pytest.raises(ApiError) as info, limits.admit(user):
        pass
    assert info.value.status == 429 and info.value.code == "too_many_requests"
    return info.value


def test_a_user_with_too_many_requests_waiting_is_refused_and_others_are_not():
    limits = UserLimits(max_pending=2, rate=1000, burst=1000, clock=Clock())
    with limits.admit("alice"), limits.admit("alice"):
        error = refused(limits, "alice")
        assert error.headers == {"Retry-After": "1"} and "USER_MAX_PENDING" in error.message
        with limits.admit("bob"):  # bob has his own
            pass
    with limits.admit("alice"):  # her answers came: slots free again
        pass


def test_a_slot_is_given_back_when_the_request_fails():
    limits = UserLimits(max_pending=1, rate=1000, burst=1000, clock=Clock())
    with pytest.raises(RuntimeError), limits.admit("alice"):
        raise RuntimeError("the broker went away")
    with limits.admit("alice"):
        pass


def test_the_rate_allows_a_burst_then_its_average_and_says_when_to_come_back():
    clock = Clock()
    limits = UserLimits(max_pending=100, rate=2, burst=4, clock=clock)
    for _ in range(4):
        with limits.admit("alice"):
            pass
    error = refused(limits, "alice")
    assert error.headers == {"Retry-After": "1"} and "USER_RATE" in error.message
    with limits.admit("bob"):
        pass
    clock.now += 0.5  # one more token at 2 per second
    with limits.admit("alice"):
        pass
    refused(limits, "alice")


def test_users_remembered_are_bounded():
    limits = UserLimits(max_pending=1, rate=1, burst=1, clock=Clock(), max_users=3)
    for n in range(10):
        with limits.admit(f"user{n}"):
            pass
    assert len(limits._users) <= 3
