"""`RecentTimes`: the newest time per key, bounded."""

from datetime import UTC, datetime, timedelta

import pytest

from fleet_shared.recent import RecentTimes

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_keeps_the_newest_time_unless_told_it_is_exact():
    times = RecentTimes(10)
    assert times.get("a") is None
    times.note("a", T0 + timedelta(minutes=5))
    times.note("a", T0)  # older: the newest stays
    assert times.get("a") == T0 + timedelta(minutes=5)
    times.note("a", T0, exact=True)
    assert times.get("a") == T0


def test_forgets_a_tenth_of_the_least_recently_noted_past_capacity():
    times = RecentTimes(20)
    for n in range(20):
        times.note(f"k{n}", T0)
    times.note("k0", T0)  # noted again: now the most recent
    times.note("k20", T0)
    assert len(times) == 19
    assert times.get("k0") == T0 and times.get("k20") == T0
    assert times.get("k1") is None and times.get("k2") is None and times.get("k3") == T0


def test_refuses_a_capacity_it_could_not_trim_by_a_tenth():
    with pytest.raises(ValueError):
        RecentTimes(9)
