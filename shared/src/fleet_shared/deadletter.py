"""Dead-lettering a delivery with the reason it can never be handled.

RabbitMQ dead-letters a rejected delivery on its own (the work queues' DLX), but its `x-death`
header only says *rejected* or *delivery_limit*, never why. A consumer that knows why calls
`dead_letter`: the delivery is republished, unchanged, to `<p>.dlx` with the source queue as
routing key (so it lands in `<queue>.dlq`, like a broker dead letter) and these headers added:

| header | value |
|---|---|
| `x-fleet-dead-reason` | what was wrong, for a human (at most 1,000 characters) |
| `x-fleet-dead-queue` | the queue the delivery came from (where a replay puts it back) |
| `x-fleet-dead-routing-key` | the routing key it was published with |
| `x-fleet-dead-at` | when (ISO 8601, UTC) |
| `x-fleet-dead-by` | the service that gave up on it |

The caller acks the delivery only after this returned (the dead letter was confirmed), so the
message is in one of the two queues at any time. `python -m fleet_devtools.dlq` shows and replays them.
"""

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, DeliveryError
from faststream.rabbit import RabbitBroker

from .broker import CONFIRM_TIMEOUT, BrokerUnavailable
from .contracts import utcnow
from .topology import Topology

REASON_HEADER = "x-fleet-dead-reason"
QUEUE_HEADER = "x-fleet-dead-queue"
ROUTING_KEY_HEADER = "x-fleet-dead-routing-key"
AT_HEADER = "x-fleet-dead-at"
BY_HEADER = "x-fleet-dead-by"
DEAD_HEADERS = (REASON_HEADER, QUEUE_HEADER, ROUTING_KEY_HEADER, AT_HEADER, BY_HEADER)
MAX_REASON = 1000


def dead_letter_headers(message: AbstractIncomingMessage, queue: str, reason: str, service: str) -> dict:
    return {
        **(message.headers or {}),
        REASON_HEADER: reason[:MAX_REASON],
        QUEUE_HEADER: queue,
        ROUTING_KEY_HEADER: message.routing_key or "",
        AT_HEADER: utcnow().isoformat(),
        BY_HEADER: service,
    }


async def dead_letter(
    broker: RabbitBroker,
    topology: Topology,
    queue: str,
    message: AbstractIncomingMessage,
    reason: str,
    service: str,
) -> None:
    """Put `message` (a delivery from `queue`) into `<queue>.dlq` with `reason`; wait for the confirm.

    Raises `BrokerUnavailable` when the broker did not take it: then do not ack the delivery.
    """
    try:
        await broker.publish(
            message.body,
            exchange=topology.dlx,
            routing_key=queue,
            mandatory=True,
            persist=True,
            timeout=CONFIRM_TIMEOUT,
            content_type=message.content_type,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            message_type=message.type,
            headers=dead_letter_headers(message, queue, reason, service),
        )
    # aiormq raises ChannelInvalidStateError (a RuntimeError) while the connection is down.
    except (AMQPError, DeliveryError, ConnectionError, TimeoutError, RuntimeError) as exc:
        raise BrokerUnavailable(f"could not dead-letter {message.message_id}: {exc!r}") from exc
