"""One realistic example of every event, command and query, for the API documents.

They are model instances, so an example that no longer fits its contract fails at import (and
the docs drift test with it). `example_envelope` wraps one the way it travels on the broker.
"""

from datetime import UTC, datetime
from typing import Any

from ..ids import session_name_for
from .base import Contract, deterministic_id, envelope
from .commands import (
    ChatActionView,
    DeleteMessage,
    EditMessage,
    GetMedia,
    GetQr,
    GetSession,
    HistoryImportView,
    ImportHistory,
    ListChats,
    ListContacts,
    ListGroups,
    ListMessages,
    LogoutSession,
    MarkChatRead,
    MessageActionView,
    QrView,
    ReactToMessage,
    RequestPairingCode,
    RestartSession,
    RetryMedia,
    SendMessage,
    SentView,
    SessionView,
    SetTyping,
    StartSession,
    StopSession,
)
from .events import (
    ChatRead,
    ChatUpdated,
    ContactLid,
    ContactLidSeen,
    ContactLidsMapped,
    GroupParticipant,
    MediaAvailable,
    MessageAck,
    MessageEdited,
    MessageImported,
    MessageMediaUpdated,
    MessageReaction,
    MessageReceived,
    MessageRevoked,
    MessageSent,
    SessionActive,
    SessionQrUpdated,
    SessionStatusChanged,
    SessionStatusReported,
)
from .media import MediaRef, MessageMedia
from .stream import ListEvents
from .webhooks import CreateWebhook, DeleteWebhook, ListDeliveries, ListWebhooks

USER = "alice"
SESSION = session_name_for(USER)
PHONE = "15550001111"
CONTACT = "4915112345678@c.us"
GROUP = "120363025246125486@g.us"
AT = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
TS = int(AT.timestamp())
RECEIVED_ID = "false_4915112345678@c.us_3EB0C431D5A1F4E2B8C7"
SENT_ID = "true_4915112345678@c.us_3EB0A9F2C8D14B6E7A21"
QR_VALUE = "2@Yc5pWm8rXq1Zk3o9Lb7TnVh0==,8Xr3LkQ1pZ5mNc7Vb2Jh9T0Wq4Ye6Us=,V2lubm93IHdhaGEtZmxlZXQ=,AQID"
# `nextCursor`s as the persister hands them out (opaque to clients).
CHAT_CURSOR = "WyJjIiwxNzk1ODYwMDAwLCI0OTE1MTEyMzQ1Njc4QGMudXMiXQ"
MESSAGE_CURSOR = "WyJuIiwxNzk1ODYwMDAwNDEyLCJmYWxzZV80OTE1MTEyMzQ1Njc4QGMudXNfM0VCMEM0MzFENUExRjRFMkI4QzciXQ"
PHOTO_ID = "false_4915112345678@c.us_3EB0F00D"
PHOTO = MessageMedia(
    kind="image", mimetype="image/jpeg", filename="beach.jpg", size=284_511, status="stored",
    stored=MediaRef(store="gridfs", key=f"messages/{USER}/{PHOTO_ID}", size=284_511, sha256="5f" * 32),
)
# A 1x1 transparent PNG: what `qr.data` looks like (base64), short enough for a document.
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

EVENT_EXAMPLES: dict[str, Contract] = {
    e.TYPE: e
    for e in (
        MessageReceived(
            id=RECEIVED_ID, chat_id=CONTACT, from_me=False, from_=CONTACT, to=f"{PHONE}@c.us", body="Hi Alice!",
            type="chat", has_media=False, timestamp=TS, ack=2, chat_name="Max Mustermann",
        ),
        MessageSent(
            id=SENT_ID, chat_id=CONTACT, from_me=True, from_=f"{PHONE}@c.us", to=CONTACT, body="Hi! Got it.",
            type="chat", has_media=False, timestamp=TS + 30, ack=0,
        ),
        MessageAck(id=SENT_ID, chat_id=CONTACT, from_me=True, ack=3, ack_name="READ"),
        SessionStatusReported(
            status="WORKING", phone_number=f"{PHONE}@c.us", push_name="Alice", reported_at_ms=TS * 1000,
            waha_event_id="evt_01JDZ3X7Q8M4N5P6R7S8T9V0W1",
        ),
        SessionActive(message_id=RECEIVED_ID),
        SessionStatusChanged(status="WORKING", previous_status="SCAN_QR_CODE", phone_number=PHONE),
        SessionQrUpdated(value=QR_VALUE),
        MessageReaction(id=SENT_ID, chat_id=CONTACT, from_=CONTACT, from_me=False, reaction="👍", timestamp=TS + 40),
        MessageEdited(id=SENT_ID, chat_id=CONTACT, body="Hi! Got it, thanks.", edited_at=TS + 45),
        MessageRevoked(id=RECEIVED_ID, chat_id=CONTACT, revoked_at=TS + 50),
        MessageMediaUpdated(id=PHOTO_ID, chat_id=CONTACT, media=PHOTO),
        ChatRead(chat_id=CONTACT, read_at=TS + 60),
        MessageImported(
            id="false_4915112345678@c.us_3EB0D1A2B3C4", chat_id=CONTACT, from_me=False, from_=CONTACT,
            to=f"{PHONE}@c.us", body="See you tomorrow", type="chat", has_media=False, timestamp=TS - 86_400, ack=3,
            from_phone=CONTACT,
        ),
        ChatUpdated(
            chat_id=GROUP, name="Family", picture="https://pps.whatsapp.net/v/t61.24694-24/1.jpg",
            participants=[
                GroupParticipant(id=f"{PHONE}@c.us", phone=f"{PHONE}@c.us", role="superadmin"),
                GroupParticipant(id="169268823074802@lid", phone=CONTACT),
            ],
            updated_at_ms=TS * 1000,
        ),
        ContactLidsMapped(items=[ContactLid(lid="169268823074802@lid", phone=CONTACT)]),
        ContactLidSeen(lid="169268823074802@lid"),
        MediaAvailable(
            message_id=PHOTO_ID, chat_id=CONTACT, kind="image", url=f"http://waha:3000/api/files/{SESSION}/3EB0F00D.jpeg",
            mimetype="image/jpeg",
        ),
    )
}

COMMAND_EXAMPLES: dict[str, Contract] = {
    c.TYPE: c
    for c in (
        StartSession(),
        StopSession(),
        RestartSession(),
        LogoutSession(),
        GetQr(),
        RequestPairingCode(phone_number="4915112345678"),
        ImportHistory(),
        SendMessage(chat_id=CONTACT, text="Hi! Got it.", idempotency_key="order-42"),
        ReactToMessage(message_id=RECEIVED_ID, reaction="❤️"),
        EditMessage(message_id=SENT_ID, text="Hi! Got it, thanks."),
        DeleteMessage(message_id=SENT_ID),
        MarkChatRead(chat_id=CONTACT),
        SetTyping(chat_id=CONTACT, typing=True),
        RetryMedia(message_id=PHOTO_ID),
    )
}

QUERY_EXAMPLES: dict[str, Contract] = {
    q.TYPE: q
    for q in (
        GetSession(),
        ListChats(limit=20),
        ListGroups(limit=20),
        ListContacts(limit=20, cursor=CHAT_CURSOR),
        ListMessages(chat_id=CONTACT, limit=50, before=MESSAGE_CURSOR),
        GetMedia(message_id=PHOTO_ID),
        ListEvents(after=41, limit=100),
        CreateWebhook(url="https://crm.example.com/hooks/whatsapp", events=["message.*", "session.status_changed"]),
        ListWebhooks(),
        DeleteWebhook(webhook_id="9f1c2a7e4b3d4e5f8a6b7c8d9e0f1a2b"),
        ListDeliveries(webhook_id="9f1c2a7e4b3d4e5f8a6b7c8d9e0f1a2b", limit=50, before=42),
    )
}

SESSION_VIEW = SessionView(
    user_id=USER, session=SESSION, status="WORKING", phone_number=PHONE, last_error=None,
    last_activity=AT.isoformat(), updated_at=AT.isoformat(),
    history_import=HistoryImportView(
        state="done", chats=42, messages=1873, started_at=AT.isoformat(), finished_at=AT.replace(minute=1).isoformat()
    ),
)
QR_VIEW = QrView(status="SCAN_QR_CODE", qr={"value": QR_VALUE, "mimetype": "image/png", "data": PNG_BASE64})
SENT_VIEW = SentView(id=SENT_ID, chat_id=CONTACT, timestamp=TS + 30)
MESSAGE_ACTION_VIEW = MessageActionView(id=SENT_ID, chat_id=CONTACT)
CHAT_ACTION_VIEW = ChatActionView(chat_id=CONTACT)


def example_envelope(payload: Contract) -> dict[str, Any]:
    """`payload` in its envelope, as on the broker and on the live WebSocket (stable ids and times)."""
    return envelope(
        payload,
        USER,
        id=deterministic_id(USER, "example", payload.TYPE),
        session=SESSION,
        correlation_id=deterministic_id(USER, "example-correlation", payload.TYPE),
        occurred_at=AT,
    ).wire()
