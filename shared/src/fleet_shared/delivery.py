"""A FastStream decoder that hands a subscriber the delivery itself: `decoder=whole_delivery`.

    @broker.subscriber(queue, decoder=whole_delivery)
    async def handle(message: Any) -> None:  # the RabbitMessage: .body, .raw_message, .reply_to ...

Why not `body: bytes, message: RabbitMessage`: FastStream resolves a context parameter such as
`RabbitMessage` with a synchronous function that fast_depends runs in a worker thread, for every
delivery. That thread hop cost ~400 µs of CPU per message (py-spy: `CallModel.asolve` ->
`run_in_threadpool`) and halved how many deliveries a service could take (docs/benchmarks.md).
The body is left untouched, so parsing is the handler's own and a bad body cannot fail before it.
"""

from faststream.rabbit.message import RabbitMessage


async def whole_delivery(message: RabbitMessage) -> RabbitMessage:
    """The decoded "body" is the delivery itself."""
    return message
