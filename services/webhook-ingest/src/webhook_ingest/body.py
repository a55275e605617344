"""Reading a request body whole, straight from the ASGI `receive`, but never more than a cap."""

from starlette.types import Receive


class BodyTooLarge(Exception):
    pass


class BadContentLength(Exception):
    pass


class IncompleteBody(Exception):
    pass


async def read_capped_body(declared: str | None, receive: Receive, max_bytes: int) -> bytes:
    """The raw body; `BodyTooLarge` as soon as the declared (`Content-Length`) or streamed size
    passes `max_bytes`."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadContentLength(f"Content-Length is not a number: {declared[:32]!r}") from exc
        if size < 0:
            raise BadContentLength("Content-Length is negative")
        if size > max_bytes:
            raise BodyTooLarge(f"body of {size} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody(f"the client went away after {received} bytes")
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(f"body is over the {max_bytes}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
