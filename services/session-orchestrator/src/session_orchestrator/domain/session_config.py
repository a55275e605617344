"""The WAHA config each user's session has (docs/sessions.md#session-config), and whether a session's
current config is that one (pure).

- `metadata` names the user (`fleet_shared.waha.session_owner` trusts it only on that user's name);
- one webhook to webhook-ingest, on the session's own path and signed with the session's own key
  (derived from the fleet's: a key read out of WAHA speaks for that session only), subscribed to
  every event waha-fleet handles;
- NOWEB's store on: without it WAHA answers no message-by-id lookup (the send-crash recovery's,
  ADR 0016), no chats, contacts or lids (history import).
"""

from dataclasses import dataclass
from typing import Any

from fleet_shared.ids import session_name_for
from fleet_shared.waha import USER_ID_METADATA, session_webhook_key

WEBHOOK_EVENTS = [
    "message",
    "message.any",
    "message.ack",
    "message.reaction",
    "message.edited",
    "message.revoked",
    "session.status",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
]
WEBHOOK_RETRIES = {"policy": "constant", "delaySeconds": 2, "attempts": 15}
NOWEB_STORE = {"enabled": True, "fullSync": False}


@dataclass(frozen=True)
class WebhookTarget:
    """webhook-ingest's `/webhooks/waha` (WEBHOOK_URL) and the fleet key (WEBHOOK_HMAC_KEY)."""

    url: str
    hmac_key: str


def session_config(user_id: str, webhook: WebhookTarget) -> dict:
    """The `config` a user's session is created with: who it belongs to and where its events go."""
    session = session_name_for(user_id)
    url = f"{webhook.url.rstrip('/')}/{session}"
    hook: dict = {"url": url, "events": list(WEBHOOK_EVENTS), "retries": dict(WEBHOOK_RETRIES)}
    if webhook.hmac_key:
        hook["hmac"] = {"key": session_webhook_key(webhook.hmac_key, session)}
    return {"metadata": {USER_ID_METADATA: user_id}, "webhooks": [hook], "noweb": {"store": dict(NOWEB_STORE)}}


def config_is_current(actual: Any, desired: dict) -> bool:
    """Whether a session's config (as WAHA answers it) is `desired` in everything waha-fleet sets.

    WAHA answers absent parts as `null` and keeps any it does not know; only the parts set here
    count, and the order of the events does not.
    """
    if not isinstance(actual, dict):
        return False
    return (
        actual.get("metadata") == desired["metadata"]
        and _noweb_store(actual) == desired["noweb"]["store"]
        and [_webhook(h) for h in actual.get("webhooks") or []] == [_webhook(h) for h in desired["webhooks"]]
    )


def _noweb_store(config: dict) -> Any:
    noweb = config.get("noweb")
    return noweb.get("store") if isinstance(noweb, dict) else None


def _webhook(hook: Any) -> tuple:
    if not isinstance(hook, dict):
        return (None,)
    hmac, events = hook.get("hmac"), hook.get("events")
    key = hmac.get("key") if isinstance(hmac, dict) else None
    return hook.get("url"), frozenset(events if isinstance(events, list) else []), key, hook.get("retries")
