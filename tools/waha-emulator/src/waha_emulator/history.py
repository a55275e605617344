"""A session's past: chats and messages put in the store as if WhatsApp had synced them at pairing.

Either explicit (`load_chats`) or generated (`generate`): a deterministic history from a seed, with
people's names, group chats among them, some @lid chats, captions and attachments. A generated
chat's messages are only made when the chat is first read, and a message id tells which chat holds
it, so a 200 x 50 history costs a few kilobytes until it is read.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .groups import Group, Member, new_group_id
from .media import KIND_DEFAULT_MIMETYPES, Media
from .messages import ensure_suffix, is_group, now_s
from .state import Session
from .store import Chat, Contact, Record, lid_for

FIRST = ("Anna", "Ben", "Carla", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Karin", "Luca",
         "Maya", "Nico", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umut", "Vera", "Wim", "Yara", "Zoe", "Amir",
         "Bea", "Chen", "Dora", "Emil", "Fatma", "Gil", "Hana", "Ivo", "Jana", "Kofi", "Lena", "Mateo", "Nora")
LAST = ("Schmidt", "Rossi", "Garcia", "Novak", "Kowalski", "Silva", "Jensen", "Dubois", "Yilmaz", "Okafor",
        "Tanaka", "Müller", "Costa", "Nilsen", "Petrov", "Haddad", "Moreau", "Fischer", "Lopez", "Ahmed")
GROUPS = ("Family", "Book club", "Football Sunday", "Flat 3B", "Climbing crew", "Project Atlas", "Parents 4th grade",
          "Trip to Lisbon", "Choir", "Office lunch", "Garden allotment", "Board games", "Running club", "Band")
LINES = ("Hi!", "How are you?", "See you tomorrow", "Thanks a lot 🙏", "Running 10 minutes late", "Sounds good",
         "Can you call me?", "Happy birthday! 🎉", "Did you see this?", "On my way", "Where are we meeting?",
         "Haha 😂", "Let me check and get back to you", "Great news!", "Good night", "Sure, no problem",
         "What time works for you?", "I sent the documents", "👍", "Lunch on Friday?", "Miss you!",
         "The meeting moved to 3pm", "Can you bring the charger?", "Photos from the weekend", "Ok")
CODES = ("49", "44", "33", "39", "34", "31", "48", "90", "55", "1", "91", "81")
KINDS = (("image", "IMG-{n}.jpg", 60_000), ("document", "Invoice-{n}.pdf", 90_000), ("ptt", None, 12_000),
         ("video", "VID-{n}.mp4", 400_000))
MAX_MESSAGES = 20_000  # chats x messagesPerChat, the store's size


def _h(*parts: object) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest(), 16)


@dataclass(frozen=True)
class ChatSpec:
    id: str
    name: str
    picture: str | None
    members: tuple[tuple[str, str], ...]  # (id in the chat, phone number) of the others; one for a DM
    saved: bool  # the person is in the address book (a name), else only their push name


class Generator:
    def __init__(self, session: str, me_id: str, seed: str, chats: int, per_chat: int, until: int) -> None:
        self.session, self.me_id, self.seed = session, me_id, seed
        self.count, self.per_chat, self.until = chats, per_chat, until

    def _person(self, rng: random.Random) -> tuple[str, str]:
        code = rng.choice(CODES)
        pn = f"{code}{rng.randrange(10**9, 10**10)}@c.us"
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}", pn

    def spec(self, ci: int) -> ChatSpec:
        rng = random.Random(_h(self.seed, "chat", ci))
        picture = f"https://pps.whatsapp.net/v/t61.24694-24/{_h(self.seed, ci) % 10**12}.jpg" \
            if rng.random() < 0.6 else None
        if rng.random() < 0.2:
            lid_group = rng.random() < 0.5
            people = [self._person(rng) for _ in range(rng.randint(2, 7))]
            members = tuple((lid_for(self.session, pn) if lid_group else pn, pn) for _, pn in people)
            gid = new_group_id(f"{self.seed}:group:{ci}")
            return ChatSpec(gid, rng.choice(GROUPS), picture, members, True)
        name, pn = self._person(rng)
        chat_id = lid_for(self.session, pn) if rng.random() < 0.15 else pn
        return ChatSpec(chat_id, name, picture, ((chat_id, pn),), rng.random() < 0.7)

    def step(self, ci: int) -> int:
        return 60 + _h(self.seed, "step", ci) % 3600

    def last_timestamp(self, ci: int) -> int:
        return self.until - ci * 1800 - _h(self.seed, "last", ci) % 1500

    def raw_id(self, ci: int, j: int) -> str:
        return f"{ci:04X}{j:04X}" + f"{_h(self.seed, 'id', ci, j):X}"[:12]

    def record(self, spec: ChatSpec, ci: int, j: int) -> Record:
        rng = random.Random(_h(self.seed, "msg", ci, j))
        ts = self.last_timestamp(ci) - (self.per_chat - 1 - j) * self.step(ci) + rng.randrange(50)
        from_me = rng.random() < 0.4
        sender = None if from_me or not is_group(spec.id) else rng.choice(spec.members)[0]
        raw = self.raw_id(ci, j)
        media = None
        body: str | None = rng.choice(LINES)
        if rng.random() < 0.1:
            kind, filename, size = rng.choice(KINDS)
            media = Media(kind=kind, mimetype=KIND_DEFAULT_MIMETYPES[kind] if kind != "document" else "application/pdf",
                          filename=filename.format(n=j) if filename and kind == "document" else None,
                          size=size + rng.randrange(size), seed=f"{self.seed}:{raw}")
            body = rng.choice(LINES) if kind in ("image", "video") and rng.random() < 0.5 else None
        unread = not from_me and j >= self.per_chat - 2 and _h(self.seed, "unread", ci) % 3 == 0
        return Record(raw_id=raw, chat_id=spec.id, from_me=from_me, timestamp=ts, body=body,
                      ack=2 if unread else 3, participant=sender, media=media)

    def loader(self, spec: ChatSpec, ci: int) -> Callable[[], list[Record]]:
        return lambda: [self.record(spec, ci, j) for j in range(self.per_chat)]

    def peek(self, spec: ChatSpec, ci: int) -> Callable[[], Record | None]:
        return lambda: self.record(spec, ci, self.per_chat - 1) if self.per_chat else None

    def decoder(self, ids: list[str]) -> Callable[[str], str | None]:
        def decode(raw: str) -> str | None:
            try:
                ci, j = int(raw[:4], 16), int(raw[4:8], 16)
            except ValueError:
                return None
            if len(raw) == 20 and ci < self.count and j < self.per_chat and raw == self.raw_id(ci, j):
                return ids[ci]
            return None
        return decode


def _register(s: Session, spec: ChatSpec, creation: int) -> None:
    store = s.store
    for member_id, pn in spec.members:
        if member_id.endswith("@lid"):
            store.map_lid(member_id, pn)
    if is_group(spec.id):
        me = s.linked_me["id"] if s.linked_me else ""
        members = [Member(mid, pn) for mid, pn in spec.members] + [Member(me, me, "admin")]
        members[0].admin = "superadmin"
        s.groups.setdefault(spec.id, Group(spec.id, spec.name, spec.members[0][1], creation, members,
                                           picture=spec.picture))
    else:
        contact = store.contacts.setdefault(spec.id, Contact(spec.id))
        contact.name = spec.name if spec.saved else contact.name
        contact.pushname = contact.pushname or spec.name.split()[0]
        contact.picture = contact.picture or spec.picture


def generate(s: Session, chats: int, per_chat: int, seed: str | None = None, until: int | None = None) -> int:
    """Put a generated history in the session's store; the number of messages it holds."""
    gen = Generator(s.name, s.linked_me["id"] if s.linked_me else "", seed or s.name, chats, per_chat,
                    until if until is not None else now_s())
    specs = [gen.spec(ci) for ci in range(chats)]
    ids = [spec.id for spec in specs]
    for ci, spec in enumerate(specs):
        _register(s, spec, gen.last_timestamp(ci) - per_chat * gen.step(ci))
        existing = s.store.chat(spec.id)
        if existing is not None:  # a chat that already has messages: no lazy loading
            s.store.extend(existing, gen.loader(spec, ci)())
            continue
        s.store.add_generated(Chat(spec.id, name=spec.name if is_group(spec.id) else None, picture=spec.picture,
                                   timestamp=gen.last_timestamp(ci) if per_chat else 0,
                                   loader=gen.loader(spec, ci), peek=gen.peek(spec, ci)))
    s.store.add_decoder(gen.decoder(ids))
    return chats * per_chat


def load_chats(s: Session, chats: list[dict[str, Any]], parse_media: Callable[[str, Any, str], Media | None]) -> int:
    """Put explicit chats (already validated) in the store; the number of messages."""
    count = 0
    me = s.linked_me["id"] if s.linked_me else ""
    for spec in chats:
        group = bool(spec.get("isGroup")) or is_group(ensure_suffix(spec["id"]))
        chat_id = spec["id"] if "@" in spec["id"] else spec["id"] + ("@g.us" if group else "@c.us")
        chat = s.store.chat(chat_id, create=True)
        assert chat is not None
        chat.name = spec.get("name") or chat.name
        chat.picture = spec.get("picture") or chat.picture
        records = []
        for i, m in enumerate(spec.get("messages") or []):
            sender = ensure_suffix(m.get("participant") or m.get("from") or "") if group and not m["fromMe"] else None
            raw = m.get("id") or f"{_h(chat_id, i, m['timestamp'], m.get('body')):X}"[:20]
            kind = m.get("type") or "text"
            media = parse_media(kind, m.get("media"), raw) if kind != "text" else None
            records.append(Record(raw_id=raw, chat_id=chat_id, from_me=m["fromMe"], timestamp=m["timestamp"],
                                  body=m.get("body"), ack=m.get("ack", 3), participant=sender, media=media))
        s.store.extend(chat, records)
        count += len(records)
        if group and chat_id not in s.groups:
            senders = sorted({r.participant for r in records if r.participant})
            members = [Member(p, p if p.endswith("@c.us") else s.store.lids.get(p)) for p in senders]
            members.append(Member(me, me, "superadmin"))
            s.groups[chat_id] = Group(chat_id, spec.get("name") or chat_id.split("@")[0], me,
                                      min((r.timestamp for r in records), default=now_s()), members,
                                      picture=spec.get("picture"))
        elif not group and (spec.get("name") or spec.get("picture")):
            contact = s.store.contacts.setdefault(chat_id, Contact(chat_id))
            contact.name = spec.get("name") or contact.name
            contact.picture = spec.get("picture") or contact.picture
    return count
