"""Issue 22.3: pages are bounded in bytes as well as in count, and no reply outgrows the broker.
40 messages of WhatsApp's longest text in 4-byte characters (256 KiB each) are 10 MiB: a page of
200 is cut short at PAGE_MAX_BYTES with `nextCursor`, and paging still yields each message once."""

import json

import pytest
from pydantic import ValidationError

from fleet_shared.broker import answer
from fleet_shared.contracts import Reply
from fleet_shared.contracts.commands import ListChats, ListMessages
from fleet_shared.contracts.events import MAX_TEXT, MessageReceived
from persister.queries import QueryService

from .test_queries import ALICE, CHAT, ask

LONGEST = "😀" * MAX_TEXT  # 262,144 bytes of UTF-8
PAGE_MAX = 1024 * 1024


async def test_a_page_of_long_messages_is_cut_at_its_byte_cap_and_paging_yields_each_once(store, events):
    await store.apply([events.received(ALICE, f"false_{CHAT}_L{i:03d}", ts=1000 + i, body=LONGEST) for i in range(40)])
    service = QueryService(store, page_max_bytes=PAGE_MAX)
    seen, before, pages = [], None, 0
    while True:
        reply = await ask(service, ListMessages(chat_id=CHAT, limit=200, before=before))
        assert reply.ok, reply
        size = len(reply.model_dump_json().encode())
        assert size <= PAGE_MAX + len(LONGEST.encode()) + 4096, size  # the cap, plus at most the item that crossed it
        items = reply.data["items"]
        assert items, "a page always carries at least one message"
        seen += [m["id"] for m in items]
        pages += 1
        before = reply.data["nextCursor"]
        if before is None:
            break
    assert seen == [f"false_{CHAT}_L{i:03d}" for i in reversed(range(40))]
    assert pages >= 10  # ~4 such messages per MiB

    chats = await ask(service, ListChats(limit=200))
    assert [c["chatId"] for c in chats.data["items"]] == [CHAT]


def test_a_text_longer_than_whatsapp_allows_is_no_message():
    with pytest.raises(ValidationError):
        MessageReceived(id=f"false_{CHAT}_X", chat_id=CHAT, from_me=False, body="x" * (MAX_TEXT + 1), timestamp=1)


def test_a_reply_over_the_brokers_limit_is_answered_as_an_error_not_sent():
    big = Reply.success({"items": ["x" * 1000] * 200})
    sent = json.loads(answer(big, max_bytes=64 * 1024).body)
    assert (sent["ok"], sent["error"]["code"], sent["error"]["status"]) == (False, "reply_too_large", 500)
    small = json.loads(answer(Reply.success({"n": 1}), max_bytes=64 * 1024).body)
    assert small == {"ok": True, "data": {"n": 1}, "error": None}
