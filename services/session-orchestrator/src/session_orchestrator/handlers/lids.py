"""The phone number of a person WhatsApp named by a `@lid` (`contact.lid_seen`, from webhook-ingest).

WAHA knows both ids of people its engine met (`GET /api/{session}/lids/{lid}` -> `{lid, pn}`); the
pair goes out as `contact.lids_mapped`, which the persister keeps to give those messages their
`fromPhone`. Answers are cached per user (bounded), so a lid is asked for once per replica.
"""

import logging
from dataclasses import dataclass, field

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, deterministic_id, envelope
from fleet_shared.contracts.events import ContactLid, ContactLidSeen, ContactLidsMapped
from fleet_shared.ids import session_name_for
from fleet_shared.recent import RecentTimes

from ..adapters.ports import EventPublisher, Waha, WahaError, WahaUnavailable
from ..domain.history import phone_id
from .errors import Retry

log = logging.getLogger(__name__)

CACHE = 100_000  # (user, lid) pairs resolved, ~200 bytes each


@dataclass
class LidResolver:
    waha: Waha
    events: EventPublisher
    _known: RecentTimes = field(default_factory=lambda: RecentTimes(CACHE))

    async def seen(self, env: Envelope) -> None:
        """Raises `Retry` when WAHA or the broker is unavailable (the broker delivers it again)."""
        seen: ContactLidSeen = env.data
        key = f"{env.user_id} {seen.lid}"
        if self._known.get(key) is not None:
            return
        session = session_name_for(env.user_id)
        try:
            answer = await self.waha.lid(session, seen.lid)
        except WahaUnavailable as exc:
            raise Retry(exc.message) from exc
        except WahaError as exc:
            log.info("no phone number for %s's %s: %s", env.user_id, seen.lid, exc.message)
            return
        phone = phone_id(answer.get("pn"))
        if phone is not None:
            mapped = ContactLidsMapped(items=[ContactLid(lid=seen.lid, phone=phone)])
            out = envelope(mapped, env.user_id, id=deterministic_id(env.user_id, "lids", seen.lid), session=session,
                           correlation_id=env.correlation_id or env.id)
            try:
                await self.events.publish(out)
            except BrokerUnavailable as exc:
                raise Retry(str(exc)) from exc
        self._known.note(key, env.occurred_at)
