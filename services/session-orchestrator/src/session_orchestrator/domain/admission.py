"""MAX_SESSIONS: which sessions may start, as a pure decision over what the registry counted.

A session holds a slot while the registry says it runs (STARTING, SCAN_QR_CODE, WORKING), and from
the moment it is admitted until WAHA's first report can have arrived (`ADMISSION_GRACE`). Each
request is decided exactly as if it were alone: admitted when the sessions holding a slot, other
than its own, are fewer than MAX_SESSIONS, counting those admitted before it in its batch.
"""

from dataclasses import dataclass
from datetime import timedelta

ADMISSION_GRACE = timedelta(seconds=60)


@dataclass(frozen=True)
class Refused:
    running: int  # the sessions holding a slot, the requester's own not counted


def decide_batch(users: list[str], holding: int, held: set[str], max_sessions: int) -> list[Refused | None]:
    """For each of `users` in arrival order: None (admitted) or `Refused`.

    `holding`: sessions holding a slot, those of `users` that hold one (`held`) included.
    """
    held = set(held)
    decisions: list[Refused | None] = []
    for user in users:
        others = holding - 1 if user in held else holding
        if others >= max_sessions:
            decisions.append(Refused(others))
            continue
        if user not in held:
            held.add(user)
            holding += 1
        decisions.append(None)
    return decisions
