"""Examples of every request and answer body of the REST API, by the name of its schema.

Built from model instances (a stale example fails at import), and attached to the OpenAPI
document by `openapi.py` wherever a body of that schema has no example of its own.
"""

from typing import Any

from pydantic import BaseModel

from fleet_shared.contracts.admin import AdminSessionCount, AdminSessionItem, AdminSessionRecord, StatusEntry
from fleet_shared.contracts.commands import HistoryImportView, PairingCodeView
from fleet_shared.contracts.examples import (
    AT,
    CHAT_ACTION_VIEW,
    CHAT_CURSOR,
    CONTACT,
    GROUP,
    MESSAGE_ACTION_VIEW,
    MESSAGE_CURSOR,
    PHONE,
    QR_VIEW,
    RECEIVED_ID,
    SENT_ID,
    SENT_VIEW,
    SESSION,
    SESSION_VIEW,
    TS,
    USER,
)
from fleet_shared.contracts.pages import ChatItem, ChatPage, LastMessage, MessageItem, MessagePage, Participant
from fleet_shared.contracts.webhooks import (
    CreatedWebhook,
    CreateWebhook,
    DeliveryPage,
    DeliveryView,
    WebhookList,
    WebhookView,
)

from .schemas import (
    EditBody,
    EventsTicket,
    PairingCodeBody,
    ReactionBody,
    ReadBody,
    SendMessageBody,
    SessionStatusView,
    TypingBody,
)

_RECEIVED = MessageItem(
    id=RECEIVED_ID, chat_id=CONTACT, from_me=False, from_=CONTACT, to=f"{PHONE}@c.us", participant=None,
    body="Hi Alice!", type="chat", has_media=False, timestamp=TS, ack=2, from_phone=CONTACT,
)
_SENT = MessageItem(
    id=SENT_ID, chat_id=CONTACT, from_me=True, from_=f"{PHONE}@c.us", to=CONTACT, participant=None,
    body="Hi! Got it.", type="chat", has_media=False, timestamp=TS + 30, ack=3,
)
_CHATS = [
    ChatItem(
        chat_id=CONTACT, name="Max Mustermann", is_group=False, updated_at=(AT.replace(second=30)).isoformat(),
        last_message=LastMessage(id=SENT_ID, body="Hi! Got it.", from_me=True, timestamp=TS + 30),
    ),
    ChatItem(
        chat_id=GROUP, name="Family", is_group=True, updated_at=AT.isoformat(),
        picture="https://pps.whatsapp.net/v/t61.24694-24/1.jpg",
        participants=[
            Participant(id=f"{PHONE}@c.us", phone=f"{PHONE}@c.us", role="superadmin"),
            Participant(id="169268823074802@lid", phone=CONTACT, role="participant"),
        ],
        last_message=LastMessage(id=f"false_{GROUP}_3EB05D2A7C_49151999@c.us", body="Dinner at 8?", from_me=False, timestamp=TS - 600),
    ),
]
_RECORD = AdminSessionRecord(
    user_id=USER, session=SESSION, status="WORKING", phone_number=PHONE, last_activity=AT.isoformat(),
    desired="running", created_at=AT.replace(hour=9).isoformat(), updated_at=AT.isoformat(),
    status_history=[
        StatusEntry(status="STARTING", at=AT.replace(hour=9).isoformat()),
        StatusEntry(status="SCAN_QR_CODE", at=AT.replace(hour=9, second=2).isoformat()),
        StatusEntry(status="WORKING", at=AT.replace(hour=9, minute=1).isoformat()),
    ],
)

_HOOK_URL = "https://crm.example.com/hooks/whatsapp"
_HOOK = {"id": "9f1c2a7e4b3d4e5f8a6b7c8d9e0f1a2b", "url": _HOOK_URL, "events": ["message.*", "session.status_changed"],
         "created_at": AT.isoformat()}
_BY_SCHEMA: dict[str, BaseModel] = {
    "SessionView": SESSION_VIEW,
    "QrView": QR_VIEW,
    "SentView": SENT_VIEW,
    "SessionStatusView": SessionStatusView(status="STARTING"),
    "PairingCodeBody": PairingCodeBody(phoneNumber="4915112345678"),
    "PairingCodeView": PairingCodeView(code="ABCD-EFGH"),
    "HistoryImportView": HistoryImportView(state="running", chats=12, messages=587, started_at=AT.isoformat()),
    "SendMessageBody": SendMessageBody(chatId=CONTACT, text="Hi! Got it.", replyTo=RECEIVED_ID),
    "MessageActionView": MESSAGE_ACTION_VIEW,
    "ChatActionView": CHAT_ACTION_VIEW,
    "ReactionBody": ReactionBody(reaction="❤️"),
    "EditBody": EditBody(text="Hi! Got it, thanks."),
    "ReadBody": ReadBody(),
    "TypingBody": TypingBody(typing=True),
    "EventsTicket": EventsTicket(
        ticket="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc5NTg2MDAzMCwianRpIjoiNGJ6In0.c2ln",
        expiresIn=30,
    ),
    "ChatPage": ChatPage(items=_CHATS, next_cursor=CHAT_CURSOR),
    "MessagePage": MessagePage(items=[_SENT, _RECEIVED], next_cursor=MESSAGE_CURSOR),
    "AdminSessionItem": AdminSessionItem(user_id=USER, session=SESSION, status="WORKING", last_activity=AT.isoformat()),
    "AdminSessionCount": AdminSessionCount(
        count=3, by_status={"WORKING": 1, "SCAN_QR_CODE": 1, "STOPPED": 1}, running=2, max_sessions=1000
    ),
    "AdminSessionRecord": _RECORD,
    "CreateWebhook": CreateWebhook(url=_HOOK_URL, events=["message.*", "session.status_changed"]),
    "CreatedWebhook": CreatedWebhook(**_HOOK, secret="whsec_2Qm3…"),
    "WebhookList": WebhookList(items=[WebhookView(**_HOOK)]),
    "DeliveryPage": DeliveryPage(
        items=[
            DeliveryView(seq=42, event_id="5b0c4c2e-1f6a-5c1d-9a0e-2f3b4c5d6e7f", type="message.received", status="pending",
                         attempts=3, last_status=503, last_error="answered 503", next_attempt_at=AT.isoformat(),
                         created_at=AT.isoformat()),
            DeliveryView(seq=41, event_id="0d1e2f3a-4b5c-5d6e-8f70-8192a3b4c5d6", type="message.ack", status="delivered",
                         attempts=1, last_status=200, delivered_at=AT.isoformat(), created_at=AT.isoformat()),
        ],
        next_before=41,
    ),
}


def example_for(schema_name: str) -> Any | None:
    """The JSON example of the component schema `schema_name`, or None when there is none."""
    model = _BY_SCHEMA.get(schema_name)
    return None if model is None else model.model_dump(mode="json", by_alias=True)
