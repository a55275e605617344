"""The keys webhooks are checked with: the fleet key's, and each session's derived from it.

Deriving a session's key and keying an HMAC with it cost about as much as checking the signature
itself (docs/benchmarks.md, issue 19), and a session sends many webhooks: so each session's keyed
HMAC is kept, for the sessions seen most recently (an evicted one is derived again: never wrong,
only slower). A key is kept only for a session name the path allows, whatever the signature.
"""

import functools
import hmac

from fleet_shared.waha import keyed_hmac, session_webhook_key

# Sessions whose keyed HMAC is kept; well under a KiB each.
MEMORY = 4096


class WebhookKeys:
    def __init__(self, fleet_key: str, memory: int = MEMORY) -> None:
        self.fleet = keyed_hmac(fleet_key)
        self._session = functools.lru_cache(maxsize=memory)(
            lambda session: keyed_hmac(session_webhook_key(fleet_key, session))
        )

    def session(self, session: str) -> hmac.HMAC:
        """The keyed HMAC of `session`'s webhooks (`fleet_shared.waha.verify_keyed`)."""
        return self._session(session)
