"""Copying media files out of WAHA, which deletes them after WHATSAPP_FILES_LIFETIME (180 s by default).

Every `media.available` (webhook-ingest saw a file WAHA holds) is copied into the media store under
the message's key (`fleet_shared.media.media_key`): downloaded from WAHA with retries and backoff
(`WahaClient.download`), stored once however often it is asked for (a key stored already is not
fetched again), then announced as `message.media` (`stored`, or `failed` with why). A user's
`media.retry` asks WAHA to download the file again and queues it the same way.
"""

import logging
from dataclasses import dataclass

from fleet_shared.broker import BrokerUnavailable
from fleet_shared.contracts import Envelope, Reply, deterministic_id, envelope
from fleet_shared.contracts.commands import MessageActionView, RetryMedia
from fleet_shared.contracts.events import MediaAvailable, MessageMediaUpdated
from fleet_shared.contracts.media import MediaKind, MessageMedia, media_kind
from fleet_shared.ids import session_name_for
from fleet_shared.media import MediaStore, MediaStoreError, media_key
from fleet_shared.waha import parse_serialized_id

from ..adapters.ports import EventPublisher, FileTooLarge, Waha, WahaError, WahaNotFound
from ..metrics import MEDIA_COPIES
from .errors import Retry

log = logging.getLogger(__name__)

GONE = "WAHA no longer has the file (it keeps files for WHATSAPP_FILES_LIFETIME); retry to download it again"


@dataclass
class MediaCopier:
    waha: Waha
    media: MediaStore
    events: EventPublisher
    max_bytes: int

    async def copy(self, env: Envelope) -> None:
        """Copy the file `media.available` names (raises `Retry` when the store or the broker failed)."""
        available: MediaAvailable = env.data
        key = media_key(env.user_id, available.message_id)
        try:
            stored = await self.media.find(key)
            error = None
            if stored is None:
                data, error = await self._download(env, available)
                if data is not None:
                    stored = await self.media.put(key, data, available.mimetype)
        except MediaStoreError as exc:
            raise Retry(str(exc)) from exc
        media = MessageMedia(
            kind=available.kind, mimetype=available.mimetype, filename=available.filename,
            size=stored.size if stored else None, status="stored" if stored else "failed", error=error, stored=stored,
        )
        MEDIA_COPIES.labels(media.status).inc()
        await self._announce(env, available.message_id, available.chat_id, media, deterministic_id(
            env.user_id, "media", media.status, available.message_id
        ))

    async def _download(self, env: Envelope, available: MediaAvailable) -> tuple[bytes | None, str | None]:
        try:
            return await self.waha.download(available.url, self.max_bytes), None
        except FileTooLarge as exc:
            return None, exc.message
        except WahaNotFound:
            return None, GONE
        except WahaError as exc:
            log.warning("could not copy the media of %s's %s: %s", env.user_id, available.message_id, exc.message)
            return None, exc.message[:500]

    async def retry(self, env: Envelope, deadline: float) -> Reply:
        """`media.retry`: WAHA downloads the file again, and it is copied as a new one would be."""
        command: RetryMedia = env.data
        parsed = parse_serialized_id(command.message_id)
        assert parsed is not None  # a `MessageId`: the contract validated it
        session = session_name_for(env.user_id)
        info = await self.waha.message(session, parsed.chat_id, command.message_id, download_media=True, deadline=deadline)
        found = info.get("media")
        wa_media: dict = found if isinstance(found, dict) else {}
        url, mimetype = wa_media.get("url"), wa_media.get("mimetype")
        if not isinstance(url, str) or not url:
            return Reply.failure("media_unavailable", "WhatsApp has no file for this message any more", 404)
        kind: MediaKind = media_kind(mimetype if isinstance(mimetype, str) else None, info.get("type"))
        filename = wa_media.get("filename") if isinstance(wa_media.get("filename"), str) else None
        available = MediaAvailable(
            message_id=command.message_id, chat_id=parsed.chat_id, kind=kind, url=url,
            mimetype=mimetype if isinstance(mimetype, str) else None, filename=filename,
        )
        try:
            pending = MessageMedia(kind=kind, mimetype=available.mimetype, filename=filename, status="pending")
            await self._announce(env, command.message_id, parsed.chat_id, pending)
            await self.events.publish(envelope(available, env.user_id, session=session, correlation_id=env.id))
        except Retry as exc:
            raise BrokerUnavailable(str(exc)) from exc
        return Reply.success(MessageActionView(id=command.message_id, chat_id=parsed.chat_id, status="pending"))

    async def _announce(
        self, env: Envelope, message_id: str, chat_id: str, media: MessageMedia, id: str | None = None
    ) -> None:
        out = envelope(
            MessageMediaUpdated(id=message_id, chat_id=chat_id, media=media), env.user_id, id=id,
            session=session_name_for(env.user_id), correlation_id=env.correlation_id or env.id,
        )
        try:
            await self.events.publish(out)
        except BrokerUnavailable as exc:
            raise Retry(str(exc)) from exc
