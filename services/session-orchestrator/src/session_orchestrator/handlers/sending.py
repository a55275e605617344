"""`message.send`: one WhatsApp message (a text, or a media file the gateway put in the media store)
per Idempotency-Key, also across a crash (`domain/sending.py`).

409 `session_not_working` unless the registry says WORKING (or WAHA says 422). The claim is
written before WAHA's sendText; a done key answers its stored result, a key reused for another
message answers 422 `idempotency_key_reused`, and a pending claim is settled by looking the message
up in WAHA by the id the claim recorded. Then `message.sent` is published with the same id
webhook-ingest gives that message, so it is stored once.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, Reply, deterministic_id, envelope
from fleet_shared.contracts.commands import OutgoingMedia, SendMessage, SentView
from fleet_shared.contracts.events import MessageSent
from fleet_shared.contracts.media import MessageMedia
from fleet_shared.ids import session_name_for
from fleet_shared.media import MediaNotFound, MediaStore

from ..adapters.ports import (
    EventPublisher,
    OutgoingFile,
    SendLedger,
    SentMessage,
    SessionRecords,
    Waha,
    WahaRejected,
    WahaUnavailable,
)
from ..domain.sending import Claim, Sending, claim_key, fingerprint, settle
from ..domain.statuses import STOPPED, WORKING

log = logging.getLogger(__name__)

DEFAULT_ACK = 1  # SERVER: WAHA took the message
NEW_ID_WAIT = 1.0  # seconds a send waits for WAHA's new message id before claiming without it


def not_working(status: Any) -> Reply:
    return Reply.failure("session_not_working", f"the WhatsApp session is {status}, not WORKING", 409)


KEY_REUSED = Reply.failure("idempotency_key_reused", "this Idempotency-Key was already used for a different message", 422)
SEND_PENDING = Reply.failure(
    "send_pending", "a send with this Idempotency-Key is in progress or its outcome is unknown; retry later", 409
)


@dataclass
class SendCommand:
    records: SessionRecords
    sends: SendLedger
    waha: Waha
    events: EventPublisher
    media: MediaStore
    clock: Callable[[], datetime]

    async def __call__(self, env: Envelope, deadline: float) -> Reply:
        # The id the message will have, asked of WAHA while the registry is read: the claim records
        # it (and that WAHA may be called from now on) in the same write.
        next_id = asyncio.create_task(self.waha.new_message_id(session_name_for(env.user_id), deadline=deadline))
        try:
            return await self._send(env, deadline, next_id)
        finally:
            if not next_id.done():
                next_id.cancel()  # not needed (not WORKING, a repeat, or the registry failed)
            elif not next_id.cancelled():
                next_id.exception()  # looked at: a failure nobody needed is not logged as lost

    async def _send(self, env: Envelope, deadline: float, next_id: "asyncio.Task[str | None]") -> Reply:
        command: SendMessage = env.data
        doc = await self.records.touch_send(env.user_id, self.clock())
        if doc.get("status") != WORKING:
            return not_working(doc.get("status") or STOPPED)
        key = claim_key(command.idempotency_key, env.id)
        # A claim written with the id spares the write `mark_sending` would make; a WAHA slower than
        # NEW_ID_WAIT to give one does not hold up a repeated send that WAHA is not needed for.
        await asyncio.wait([next_id], timeout=NEW_ID_WAIT)
        ready = next_id.done() and not next_id.cancelled() and next_id.exception() is None
        sending = Sending(next_id.result(), deadline - asyncio.get_running_loop().time()) if ready else None
        print_ = fingerprint(
            command.chat_id, command.text, command.reply_to, command.media.stored.sha256 if command.media else None
        )
        claim = await self.sends.claim(env.user_id, key, print_, env.id, self.clock(), sending=sending)
        if claim.outcome == "done":
            return Reply.success(claim.result)
        if claim.outcome == "mismatch":
            return KEY_REUSED
        sent = None
        if claim.outcome == "pending":
            sent, verdict = await self._settle(env, claim, deadline)
            if verdict == "unknown":
                return SEND_PENDING
        if sent is None:
            try:
                sent = await self._send_now(env, key, claim, sending, next_id, deadline)
            except WahaRejected as exc:
                if exc.status == 422:
                    return not_working(exc.session_status or doc.get("status") or STOPPED)
                raise
        result = SentView(id=sent.id, chat_id=command.chat_id, timestamp=sent.timestamp).wire()
        await self.sends.complete(env.user_id, key, result, self.clock())
        if doc.get("lastError") is not None:
            await self.records.clear_error(env.user_id, self.clock())
        await self._publish_sent(env, doc.get("phoneNumber"), sent)
        return Reply.success(result)

    async def _settle(self, env: Envelope, claim: Claim, deadline: float) -> tuple[SentMessage | None, str]:
        """A crash or timeout between WAHA's sendText and the result: did the message go out?"""
        command: SendMessage = env.data
        session = session_name_for(env.user_id)
        found = None
        if claim.message_id:
            found = await self.waha.find_sent(session, command.chat_id, claim.message_id, deadline=deadline)
        return found, settle(claim, found is not None, self.clock())

    async def _send_now(
        self, env: Envelope, key: str, claim: Claim, sending: Sending | None, next_id: "asyncio.Task[str | None]",
        deadline: float,
    ) -> SentMessage:
        """WAHA's sendText, with the id recorded in the claim first; a send WAHA certainly did not
        make releases the claim (the client may try again with the same key)."""
        command: SendMessage = env.data
        session = session_name_for(env.user_id)
        try:
            # The file first: a store that cannot give it is a failure before WAHA was called.
            file = await self._file(command.media) if command.media else None
            if claim.outcome == "claimed" and sending is not None:
                message_id = sending.message_id  # recorded with the claim
            else:
                message_id = claim.message_id or await next_id  # WAHA's failure to give one is raised here
                remaining = deadline - asyncio.get_running_loop().time()
                await self.sends.mark_sending(env.user_id, key, message_id, self.clock(), remaining)
            if file is not None:
                return await self.waha.send_media(
                    session, command.chat_id, file, command.text, command.reply_to, message_id=message_id, deadline=deadline
                )
            return await self.waha.send_text(
                session, command.chat_id, command.text or "", command.reply_to, message_id=message_id, deadline=deadline
            )
        except WahaRejected:
            await self.sends.release(env.user_id, key)
            raise
        except WahaUnavailable as exc:
            if exc.not_done:
                await self.sends.release(env.user_id, key)
            raise
        except MediaNotFound:
            await self.sends.release(env.user_id, key)
            raise

    async def _file(self, media: OutgoingMedia) -> OutgoingFile:
        data = b"".join([chunk async for chunk in self.media.read(media.stored.key)])
        return OutgoingFile(kind=media.kind, mimetype=media.mimetype, filename=media.filename, data=data)

    async def _publish_sent(self, env: Envelope, phone: str | None, sent: SentMessage) -> None:
        command: SendMessage = env.data
        media = command.media
        event = MessageSent(
            id=sent.id,
            chat_id=command.chat_id,
            from_me=True,
            from_=f"{phone}@c.us" if phone else None,
            to=command.chat_id,
            body=command.text,
            type=media.kind if media else "chat",
            has_media=media is not None,
            timestamp=sent.timestamp,
            ack=sent.ack if sent.ack is not None else DEFAULT_ACK,
            media=MessageMedia(
                kind=media.kind, mimetype=media.mimetype, filename=media.filename, size=media.stored.size,
                status="stored", stored=media.stored,
            ) if media else None,
            reply_to=command.reply_to,
            received_at_ms=int(self.clock().timestamp() * 1000),
        )
        out = envelope(
            event,
            env.user_id,
            # Same id as webhook-ingest gives the `message.any` of this message: stored once.
            id=deterministic_id(env.user_id, "message", sent.id),
            session=session_name_for(env.user_id),
            correlation_id=env.correlation_id or env.id,
            occurred_at=datetime.fromtimestamp(sent.timestamp, UTC),
        )
        try:
            await self.events.publish(out)
        except BrokerUnavailable as exc:
            # The message went out; WAHA's own message.any webhook will record it all the same.
            log.warning("message.sent of %s not published: %s", env.user_id, exc)
