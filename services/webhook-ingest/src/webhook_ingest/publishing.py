"""Putting webhooks on the broker: fleet events on `<p>.events`, unknown sessions' webhooks on `<p>.parked`.

Both wait for the broker's confirm and raise `BrokerUnavailable` when it did not take the message.
"""

from starlette.datastructures import Headers

from fleet_shared.broker import json_properties
from fleet_shared.connect import PublisherLink
from fleet_shared.contracts import Envelope, deterministic_id
from fleet_shared.topology import Topology

from .waha import WahaWebhook

# Request headers kept with a parked webhook (so it can be inspected, re-verified and replayed).
PARKED_HEADERS = (
    "x-webhook-request-id",
    "x-webhook-timestamp",
    "x-webhook-hmac",
    "x-webhook-hmac-algorithm",
    "user-agent",
)
MAX_HEADER_VALUE = 512
PARKED_MESSAGE_TYPE = "waha.webhook"


async def publish_event(link: PublisherLink, topology: Topology, env: Envelope) -> None:
    # mandatory: an event no queue took is refused (503) instead of silently lost.
    await link.require().publish_envelope(topology.events, env, mandatory=True)


def parked_headers(hook: WahaWebhook, headers: Headers, reason: str) -> dict[str, str]:
    kept = {name: headers[name][:MAX_HEADER_VALUE] for name in PARKED_HEADERS if name in headers}
    return {
        **kept,
        "x-park-reason": reason,
        "x-waha-event": hook.event,
        "x-waha-session": hook.session,
        "x-waha-event-id": hook.id,
    }


def parked_message_id(hook: WahaWebhook) -> str:
    return deterministic_id("parked", hook.session, hook.id)


async def park(
    link: PublisherLink, topology: Topology, raw: bytes, hook: WahaWebhook, headers: Headers, reason: str
) -> None:
    """Publish the raw webhook body, unchanged, with the headers of interest, to the parked fanout."""
    publisher = link.require()
    properties = json_properties(
        publisher.name,
        message_id=parked_message_id(hook),
        correlation_id=hook.id,
        message_type=PARKED_MESSAGE_TYPE,
        headers=parked_headers(hook, headers, reason),
    )
    await publisher.publish(topology.parked, "", raw, properties, mandatory=True)
