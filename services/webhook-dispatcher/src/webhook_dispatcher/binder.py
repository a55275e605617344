"""Binding a user's stream to `<p>.webhooks.stream` while they have webhooks (`Topology.webhook_binding`)."""

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from fleet_shared.topology import Topology


class Binder:
    def __init__(self, url: str, topology: Topology) -> None:
        self._url = url
        self._topology = topology
        self._connection: AbstractRobustConnection | None = None

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": "webhook-dispatcher-binder"}, reconnect_interval=1.0
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _apply(self, user_id: str, *, bind: bool) -> None:
        if self._connection is None:
            raise RuntimeError("the binder is not connected")
        binding = self._topology.webhook_binding(user_id)
        async with self._connection.channel() as channel:
            queue = await channel.get_queue(binding.destination, ensure=False)
            if bind:
                await queue.bind(binding.source, routing_key=binding.routing_key)
            else:
                await queue.unbind(binding.source, routing_key=binding.routing_key)

    async def bind(self, user_id: str) -> None:
        await self._apply(user_id, bind=True)

    async def unbind(self, user_id: str) -> None:
        await self._apply(user_id, bind=False)
