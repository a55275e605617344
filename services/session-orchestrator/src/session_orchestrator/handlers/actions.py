"""What the user does to messages and chats besides sending: react, edit, delete for everyone, mark
a chat read, type.

Each is one WAHA call on the user's WORKING session and idempotent by nature (setting a reaction or
a text twice leaves one), so a redelivery needs no claim. WAHA's webhooks report the reaction, the
edit and the deletion (`message.reaction`, `message.edited`, `message.revoked`, with `fromMe`), and
webhook-ingest publishes them like anyone else's; reading is published here (`chat.read`), as
WAHA reports nothing for it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, Reply, envelope
from fleet_shared.contracts.commands import (
    ChatActionView,
    DeleteMessage,
    EditMessage,
    MarkChatRead,
    MessageActionView,
    ReactToMessage,
    SetTyping,
)
from fleet_shared.contracts.events import ChatRead
from fleet_shared.ids import session_name_for
from fleet_shared.waha import parse_serialized_id

from ..adapters.ports import EventPublisher, SessionRecords, Waha, WahaRejected
from ..domain.statuses import STOPPED, WORKING
from .sending import not_working

log = logging.getLogger(__name__)


def _chat_of(message_id: str) -> str:
    parsed = parse_serialized_id(message_id)
    assert parsed is not None  # a `MessageId`: the contract validated it
    return parsed.chat_id


@dataclass
class MessageActions:
    records: SessionRecords
    waha: Waha
    events: EventPublisher
    clock: Callable[[], datetime]

    async def react(self, env: Envelope, deadline: float) -> Reply:
        command: ReactToMessage = env.data
        return await self._on_message(env, command.message_id, deadline, "react", command.reaction)

    async def edit(self, env: Envelope, deadline: float) -> Reply:
        command: EditMessage = env.data
        return await self._on_message(env, command.message_id, deadline, "edit", command.text)

    async def delete(self, env: Envelope, deadline: float) -> Reply:
        command: DeleteMessage = env.data
        return await self._on_message(env, command.message_id, deadline, "delete")

    async def mark_read(self, env: Envelope, deadline: float) -> Reply:
        command: MarkChatRead = env.data
        if (refused := await self._not_working(env)) is not None:
            return refused
        await self.waha.send_seen(session_name_for(env.user_id), command.chat_id, command.message_ids, deadline=deadline)
        read = envelope(
            ChatRead(chat_id=command.chat_id, read_at=int(self.clock().timestamp())),
            env.user_id, session=session_name_for(env.user_id), correlation_id=env.correlation_id or env.id,
        )
        try:
            await self.events.publish(read)
        except BrokerUnavailable as exc:
            # WhatsApp knows; only the unread count is behind until the next reading.
            log.warning("chat.read of %s not published: %s", env.user_id, exc)
        return Reply.success(ChatActionView(chat_id=command.chat_id))

    async def typing(self, env: Envelope, deadline: float) -> Reply:
        command: SetTyping = env.data
        if (refused := await self._not_working(env)) is not None:
            return refused
        await self.waha.set_typing(session_name_for(env.user_id), command.chat_id, command.typing, deadline=deadline)
        return Reply.success(ChatActionView(chat_id=command.chat_id))

    async def _on_message(self, env: Envelope, message_id: str, deadline: float, action: str, value: str = "") -> Reply:
        if (refused := await self._not_working(env)) is not None:
            return refused
        session, chat_id = session_name_for(env.user_id), _chat_of(message_id)
        try:
            if action == "react":
                await self.waha.react(session, message_id, value, deadline=deadline)
            elif action == "edit":
                await self.waha.edit(session, chat_id, message_id, value, deadline=deadline)
            else:
                await self.waha.delete(session, chat_id, message_id, deadline=deadline)
        except WahaRejected as exc:
            if exc.status == 422 and exc.session_status:
                return not_working(exc.session_status)
            raise
        return Reply.success(MessageActionView(id=message_id, chat_id=chat_id))

    async def _not_working(self, env: Envelope) -> Reply | None:
        """409 unless the registry says WORKING; the command is the user's activity either way."""
        doc = await self.records.touch(env.user_id, self.clock())
        return None if doc.get("status") == WORKING else not_working(doc.get("status") or STOPPED)
