"""Validation errors in one line: what pydantic (or FastAPI) found first, and where."""

from collections.abc import Collection


def describe(exc: BaseException, prefix: str = "", skip: Collection[object] = ()) -> str:
    """`where: message` of the first error (`data.chatId: String should match pattern ...`).

    `prefix` goes in front of the location; location parts in `skip` (FastAPI's `body`) are left out.
    Anything without pydantic's `errors()` is described by its own text.
    """
    errors = getattr(exc, "errors", None)
    first = (errors() or [{}])[0] if callable(errors) else None
    if first is None:
        return str(exc)
    parts = [prefix] if prefix else []
    parts += [str(p) for p in first.get("loc", ()) if p not in skip]
    where = ".".join(parts)
    message = first.get("msg", "invalid")
    return f"{where}: {message}" if where else message
