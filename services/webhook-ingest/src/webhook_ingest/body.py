"""Reading a request body whole, but never more than a cap."""

from starlette.requests import ClientDisconnect, Request


class BodyTooLarge(Exception):
    pass


class BadContentLength(Exception):
    pass


class IncompleteBody(Exception):
    pass


async def read_capped_body(request: Request, max_bytes: int) -> bytes:
    """The raw body; `BodyTooLarge` as soon as the declared or streamed size passes `max_bytes`."""
    declared = request.headers.get("content-length")
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
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise BodyTooLarge(f"body is over the {max_bytes}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise IncompleteBody(f"the client went away after {received} bytes") from exc
    return b"".join(chunks)
