"""The only way anything here talks to WAHA (`ports.Waha` over httpx): typed calls, typed errors
(`ports.WahaError` and its kinds), bounded retries.

Retries: exponential backoff with jitter, at most `attempts` tries, honouring `Retry-After`, never
past the caller's deadline. Calls that are not safe to repeat (sending a message) are retried only
when WAHA cannot have acted on them: the connection was refused, or WAHA answered 429/503.
"""

import asyncio
import base64
import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx

from fleet_shared.waha import serialized_id

from ..metrics import WAHA_CALLS, WAHA_DURATION
from .ports import (
    FileTooLarge,
    OutgoingFile,
    SentMessage,
    WahaBadResponse,
    WahaNotFound,
    WahaRejected,
    WahaUnavailable,
    error_text,
)

log = logging.getLogger(__name__)

MIN_ATTEMPT_TIMEOUT = 0.5
# Connections to WAHA, all kept alive. More do not make one WAHA faster, and cost: httpcore looks
# at every pooled connection on each request (profiled: ~20 % of the orchestrator's CPU at 200
# connections under a burst of starts), and connections beyond the keep-alive limit were reopened
# for every call. A call waits for a free connection within its own timeout.
WAHA_CONNECTIONS = 32
RETRY_AFTER_MAX = 30.0
ACCEPT_JSON = {"Accept": "application/json"}
FILES_PATH = "/api/files/"
SEND_ENDPOINTS = {"image": "/api/sendImage", "document": "/api/sendFile", "voice": "/api/sendVoice", "video": "/api/sendVideo"}


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds or an HTTP date -> seconds to wait (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base: float = 0.2
    cap: float = 3.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before attempt `attempt + 1` (attempt counts from 1): full jitter over an exponential."""
        ceiling = min(self.cap, self.base * (2 ** (attempt - 1)))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
        return delay


def sent_message_id(body: Any, chat_id: str) -> str | None:
    """The serialized id of a sent message, from any engine's sendText answer (docs/waha.md#sendtext-answers)."""
    if not isinstance(body, dict):
        return None
    raw = body.get("id")
    if isinstance(raw, str) and raw:
        return raw  # GOWS: {"id": "true_<chat>_<raw>", "_data": ...}
    if isinstance(raw, dict):
        serialized = raw.get("_serialized")
        if isinstance(serialized, str) and serialized:
            return serialized  # WEBJS: {"id": {"_serialized": ..., "id": ...}}
    key = body.get("key")
    if isinstance(key, dict):
        key_id = key.get("id")
        if isinstance(key_id, str) and key_id:
            return serialized_id(True, chat_id, key_id)  # NOWEB (Baileys): {"key": {"id": ...}, ...}
    return None


def sent_message_timestamp(body: Any, default: int) -> int:
    """Unix seconds of a sent message: WAMessage `timestamp`, Baileys `messageTimestamp`, else `default`."""
    if isinstance(body, dict):
        for candidate in (body.get("timestamp"), body.get("messageTimestamp"), _nested(body, "_data", "timestamp")):
            if not isinstance(candidate, (int, float, str)):
                continue
            try:
                value = int(candidate)  # Baileys gives a string
            except ValueError:
                continue
            if value > 10**11:  # milliseconds
                value //= 1000
            if value > 0:
                return value
    return default


def sent_message_ack(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("ack"), int) and not isinstance(body.get("ack"), bool):
        return body["ack"]
    return None


def _nested(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, Mapping):
            return None
        body = body.get(key)
    return body


class WahaClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        media_retry: RetryPolicy | None = None,
        history_retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"X-Api-Key": api_key} if api_key else {}
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        # Copying a media file may wait longer: WAHA keeps it for minutes (WHATSAPP_FILES_LIFETIME).
        self._media_retry = media_retry or self._retry
        # The history import is in no hurry: it waits out WAHA's rate limits (429 + Retry-After).
        self._history_retry = history_retry or self._retry
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=WAHA_CONNECTIONS, max_keepalive_connections=WAHA_CONNECTIONS),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- transport ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        op: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        deadline: float | None = None,
        attempts: int | None = None,
        retry: RetryPolicy | None = None,
        max_bytes: int | None = None,
    ) -> Any:
        """One logical WAHA call: JSON in, JSON out (`max_bytes`: the raw bytes, at most that many),
        retried when that is safe (`retry`: another policy than the client's)."""
        loop = asyncio.get_running_loop()
        policy = retry or self._retry
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - loop.time()
            timeout = self._timeout if remaining is None else max(MIN_ATTEMPT_TIMEOUT, min(self._timeout, remaining))
            started = loop.time()
            retry_after: float | None = None
            try:
                response = await self._request(method, path, json, params, headers, timeout, max_bytes)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Never reached WAHA: safe to repeat anything.
                failure = WahaUnavailable(f"WAHA unreachable ({op}): {exc!r}", not_done=True)
                retryable = True
                outcome = "unreachable"
            except httpx.TimeoutException:
                failure = WahaUnavailable(f"WAHA did not answer {op} within {timeout:.1f}s")
                retryable = idempotent
                outcome = "timeout"
            except httpx.HTTPError as exc:
                failure = WahaUnavailable(f"WAHA connection failed ({op}): {exc!r}")
                retryable = idempotent
                outcome = "error"
            else:
                status = response.status_code
                outcome = str(status)
                WAHA_DURATION.labels(op).observe(loop.time() - started)
                if status < 300 and max_bytes is not None:
                    WAHA_CALLS.labels(op, outcome).inc()
                    return response.content
                body = _body(response)
                if status < 300:
                    WAHA_CALLS.labels(op, outcome).inc()
                    return body
                text = error_text(body) or response.reason_phrase
                if status == 404:
                    WAHA_CALLS.labels(op, outcome).inc()
                    raise WahaNotFound(f"WAHA {op}: {text}", status, body)
                if status == 429 or status >= 500:
                    # 429/503 mean "not done, come back later"; other 5xx may have acted already.
                    not_done = status in (429, 503)
                    failure = WahaUnavailable(f"WAHA {op} answered {status}: {text}", status, body, not_done=not_done)
                    retryable = idempotent or not_done
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    WAHA_CALLS.labels(op, outcome).inc()
                    raise WahaRejected(f"WAHA {op} answered {status}: {text}", status, body)
            WAHA_CALLS.labels(op, outcome).inc()
            if not retryable or attempt >= (attempts or policy.attempts):
                raise failure
            delay = policy.backoff(attempt, retry_after)
            if deadline is not None and loop.time() + delay + MIN_ATTEMPT_TIMEOUT > deadline:
                raise failure
            log.info("%s; retrying in %.2fs (attempt %d of %d)", failure.message, delay, attempt + 1, policy.attempts)
            await asyncio.sleep(delay)

    async def _request(
        self, method: str, path: str, json: Any, params: dict[str, str] | None, headers: dict[str, str] | None,
        timeout: float, max_bytes: int | None,
    ) -> httpx.Response:
        """The response, read whole; with `max_bytes`, read in chunks and refused past that size."""
        if max_bytes is None:
            return await self._http.request(method, path, json=json, params=params, headers=headers, timeout=timeout)
        request = self._http.build_request(method, path, json=json, params=params, headers=headers, timeout=timeout)
        response = await self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length")
            if response.status_code < 300 and declared and declared.isdigit() and int(declared) > max_bytes:
                raise FileTooLarge(f"WAHA's file is {declared} bytes, over the {max_bytes}-byte limit")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes and response.status_code < 300:
                    raise FileTooLarge(f"WAHA's file is over the {max_bytes}-byte limit")
                chunks.append(chunk)
        finally:
            await response.aclose()
        return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks), request=request)

    # ---- API ----------------------------------------------------------------------------------

    async def ping(self) -> bool:
        body = await self._call("GET", "/ping", op="ping", attempts=1)
        return isinstance(body, dict) and body.get("message") == "pong"

    async def get_session(self, name: str, *, deadline: float | None = None) -> dict:
        return _session_info(await self._call("GET", f"/api/sessions/{name}", op="session.get", deadline=deadline), "get")

    async def list_sessions(self, *, deadline: float | None = None) -> list[dict]:
        """Every session WAHA has, the STOPPED ones too (`?all=true`)."""
        body = await self._call("GET", "/api/sessions", op="session.list", params={"all": "true"}, deadline=deadline)
        if not isinstance(body, list):
            raise WahaBadResponse("WAHA's session list is not a list", None, body)
        return [info for info in body if isinstance(info, dict)]

    async def create_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict:
        body = {"name": name, "start": True, "config": config}
        return _session_info(
            await self._call("POST", "/api/sessions", op="session.create", json=body, deadline=deadline), "create"
        )

    async def session_action(self, name: str, action: str, *, deadline: float | None = None) -> dict:
        """`start`, `stop`, `restart` or `logout`: idempotent on WAHA's side."""
        if action not in ("start", "stop", "restart", "logout"):
            raise ValueError(f"unknown session action {action!r}")
        body = await self._call("POST", f"/api/sessions/{name}/{action}", op=f"session.{action}", deadline=deadline)
        return _session_info(body, action)

    async def qr_value(self, name: str, *, deadline: float | None = None) -> str:
        body = await self._call("GET", f"/api/{name}/auth/qr", op="qr.raw", params={"format": "raw"}, deadline=deadline)
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise WahaBadResponse("WAHA's raw QR has no value", None, body)
        return value

    async def qr_image(self, name: str, *, deadline: float | None = None) -> tuple[str, str]:
        """(mimetype, base64 data) of the QR as a PNG."""
        body = await self._call(
            "GET", f"/api/{name}/auth/qr", op="qr.image", params={"format": "image"}, headers=ACCEPT_JSON, deadline=deadline
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, str) or not data:
            raise WahaBadResponse("WAHA's QR image has no data", None, body)
        return str(body.get("mimetype") or "image/png"), data

    async def send_text(
        self,
        session: str,
        chat_id: str,
        text: str,
        reply_to: str | None = None,
        *,
        message_id: str | None = None,
        deadline: float | None = None,
    ) -> SentMessage:
        """`message_id`: a raw id from `new_message_id`, so the message can be looked up by it later."""
        body: dict[str, Any] = {"session": session, "chatId": chat_id, "text": text}
        if reply_to:
            body["reply_to"] = reply_to
        if message_id:
            body["id"] = message_id
        answer = await self._call("POST", "/api/sendText", op="send.text", json=body, idempotent=False, deadline=deadline)
        return _sent(answer, chat_id)

    async def new_message_id(self, session: str, *, deadline: float | None = None) -> str | None:
        """A raw id for the next message (`GET /api/{session}/new-message-id`); None if this WAHA has none."""
        try:
            body = await self._call("GET", f"/api/{session}/new-message-id", op="send.new_id", deadline=deadline)
        except WahaNotFound:
            return None
        raw = body.get("id") if isinstance(body, dict) else None
        if not isinstance(raw, str) or not raw or "_" in raw:
            raise WahaBadResponse("WAHA's new-message-id answer carries no id", None, body)
        return raw

    async def find_sent(self, session: str, chat_id: str, raw_id: str, *, deadline: float | None = None) -> SentMessage | None:
        """The message this session sent to `chat_id` with the raw id `raw_id`, or None if it never did."""
        path = f"/api/{session}/chats/{chat_id}/messages/{serialized_id(True, chat_id, raw_id)}"
        try:
            body = await self._call("GET", path, op="send.find", params={"downloadMedia": "false"}, deadline=deadline)
        except WahaNotFound:
            return None
        return _sent(body, chat_id)


    async def send_media(
        self,
        session: str,
        chat_id: str,
        media: OutgoingFile,
        caption: str | None = None,
        reply_to: str | None = None,
        *,
        message_id: str | None = None,
        deadline: float | None = None,
    ) -> SentMessage:
        """sendImage / sendFile / sendVoice / sendVideo with the file's bytes (`data`, base64)."""
        body: dict[str, Any] = {
            "session": session,
            "chatId": chat_id,
            "file": {"mimetype": media.mimetype, "filename": media.filename, "data": base64.b64encode(media.data).decode()},
        }
        if caption and media.kind != "voice":
            body["caption"] = caption
        if media.kind in ("voice", "video"):
            body["convert"] = media.kind == "voice"  # WhatsApp plays opus voice notes only
        if reply_to:
            body["reply_to"] = reply_to
        if message_id:
            body["id"] = message_id
        endpoint = SEND_ENDPOINTS[media.kind]
        answer = await self._call("POST", endpoint, op=f"send.{media.kind}", json=body, idempotent=False, deadline=deadline)
        return _sent(answer, chat_id)

    async def react(self, session: str, message_id: str, reaction: str, *, deadline: float | None = None) -> None:
        body = {"session": session, "messageId": message_id, "reaction": reaction}
        await self._call("PUT", "/api/reaction", op="message.react", json=body, deadline=deadline)

    async def edit(self, session: str, chat_id: str, message_id: str, text: str, *, deadline: float | None = None) -> None:
        path = f"/api/{session}/chats/{chat_id}/messages/{message_id}"
        await self._call("PUT", path, op="message.edit", json={"text": text}, deadline=deadline)

    async def delete(self, session: str, chat_id: str, message_id: str, *, deadline: float | None = None) -> None:
        path = f"/api/{session}/chats/{chat_id}/messages/{message_id}"
        await self._call("DELETE", path, op="message.delete", deadline=deadline)

    async def send_seen(
        self, session: str, chat_id: str, message_ids: list[str] | None = None, *, deadline: float | None = None
    ) -> None:
        body: dict[str, Any] = {"session": session, "chatId": chat_id}
        if message_ids:
            body["messageIds"] = message_ids
        await self._call("POST", "/api/sendSeen", op="chat.seen", json=body, deadline=deadline)

    async def set_typing(self, session: str, chat_id: str, typing: bool, *, deadline: float | None = None) -> None:
        path = "/api/startTyping" if typing else "/api/stopTyping"
        await self._call("POST", path, op="chat.typing", json={"session": session, "chatId": chat_id}, deadline=deadline)

    async def message(
        self, session: str, chat_id: str, message_id: str, *, download_media: bool, deadline: float | None = None
    ) -> dict:
        """One message as WAHA has it (with `download_media`, its file downloaded again)."""
        path = f"/api/{session}/chats/{chat_id}/messages/{message_id}"
        params = {"downloadMedia": "true" if download_media else "false"}
        body = await self._call("GET", path, op="message.get", params=params, deadline=deadline)
        if not isinstance(body, dict):
            raise WahaBadResponse("WAHA's message is not an object", None, body)
        return body

    async def download(self, url: str, max_bytes: int, *, deadline: float | None = None) -> bytes:
        """A media file WAHA holds: the path of its `media.url`, always asked of this WAHA (WAHA's
        own idea of its base URL may not be reachable from here, and nothing else is ever fetched)."""
        path = httpx.URL(url).raw_path.decode("ascii")
        if not path.startswith(FILES_PATH):
            raise WahaBadResponse(f"a media URL outside {FILES_PATH}", None, url)
        body = await self._call(
            "GET", path, op="media.download", max_bytes=max_bytes, retry=self._media_retry, deadline=deadline
        )
        return cast(bytes, body)

    async def request_code(self, name: str, phone_number: str, *, deadline: float | None = None) -> str:
        """A pairing code for `phone_number` (WAHA's 422 when the session does not ask for a QR)."""
        body = await self._call(
            "POST", f"/api/{name}/auth/request-code", op="auth.request_code", json={"phoneNumber": phone_number},
            idempotent=False, deadline=deadline,
        )
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or not code:
            raise WahaBadResponse("WAHA's request-code answer carries no code", None, body)
        return code

    # ---- the synced history (read by the history import, paced by its own retry policy) ---------

    async def chats_overview(self, session: str, limit: int, offset: int) -> list[dict]:
        """A page of the session's chats, newest first (`merge=false`: a person's @lid chat is its own)."""
        params = {"limit": str(limit), "offset": str(offset), "merge": "false"}
        body = await self._call("GET", f"/api/{session}/chats/overview", op="history.chats", params=params,
                                retry=self._history_retry)
        return _list_of_objects(body, "chats overview")

    async def chat_messages(self, session: str, chat_id: str, limit: int) -> list[dict]:
        """The chat's newest `limit` messages, without downloading their media."""
        params = {"limit": str(limit), "downloadMedia": "false", "merge": "false"}
        body = await self._call("GET", f"/api/{session}/chats/{chat_id}/messages", op="history.messages",
                                params=params, retry=self._history_retry)
        return _list_of_objects(body, "message list")

    async def lids(self, session: str, limit: int, offset: int) -> list[dict]:
        """A page of the people WAHA knows under both ids: `[{lid, pn}]`."""
        params = {"limit": str(limit), "offset": str(offset)}
        body = await self._call("GET", f"/api/{session}/lids", op="history.lids", params=params, retry=self._history_retry)
        return _list_of_objects(body, "lid list")

    async def lid(self, session: str, lid: str) -> dict:
        """One person's two ids: `{lid, pn}` (`pn` null when WAHA does not know it)."""
        body = await self._call("GET", f"/api/{session}/lids/{lid}", op="lids.get")
        if not isinstance(body, dict):
            raise WahaBadResponse("WAHA's lid answer is not an object", None, body)
        return body

    async def groups(self, session: str) -> list[dict]:
        """The groups the account is in, with their participants (NOWEB: an object keyed by id)."""
        body = await self._call("GET", f"/api/{session}/groups", op="history.groups", retry=self._history_retry)
        if isinstance(body, dict):
            body = list(body.values())
        return _list_of_objects(body, "group list")

    async def update_session(self, name: str, config: dict, *, deadline: float | None = None) -> dict:
        """Replace the session's config (WAHA restarts a running session, keeping its pairing)."""
        body = await self._call("PUT", f"/api/sessions/{name}", op="session.update", json={"config": config}, deadline=deadline)
        return _session_info(body, "update")


def _sent(answer: Any, chat_id: str) -> SentMessage:
    message_id = sent_message_id(answer, chat_id)
    if message_id is None:
        raise WahaBadResponse("WAHA's answer carries no message id", None, answer)
    now = int(datetime.now(UTC).timestamp())
    return SentMessage(message_id, sent_message_timestamp(answer, now), sent_message_ack(answer))


def _list_of_objects(body: Any, what: str) -> list[dict]:
    if not isinstance(body, list):
        raise WahaBadResponse(f"WAHA's {what} is not a list", None, body)
    return [item for item in body if isinstance(item, dict)]


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _session_info(body: Any, op: str) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise WahaBadResponse(f"WAHA's answer to session {op} is not a session", None, body)
    return body
