"""The gateway's OpenAPI document: FastAPI's, plus an example for every body that has none.

Examples come from `examples.py` by schema name, so every route answering a `ChatPage` shows
the same realistic page, including routes that did not name an example themselves.
`scripts/gen_api_docs.py` writes this document to docs/openapi.json.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .examples import example_for
from .schemas import error_responses

TAGS = [
    {"name": "waha", "description": "The caller's own WhatsApp session, QR, messages and chats."},
    {"name": "events", "description": "The caller's events as they happen, over a WebSocket."},
    {"name": "admin", "description": "Operators inspect every user's session (tokens with `\"role\": \"admin\"`)."},
]


def install_openapi(app: FastAPI, extra_schemas: dict[str, Any] | None = None) -> None:
    """`extra_schemas`: component schemas that bodies name but no route model brings (WebSocket frames)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes, tags=TAGS
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in (extra_schemas or {}).items():
                if components.setdefault(name, definition) != definition:
                    raise ValueError(f"two different OpenAPI schemas are named {name}")
            use_our_validation_error(schema)
            add_examples(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def use_our_validation_error(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 as its own `HTTPValidationError`; the gateway answers `ErrorResponse` (fleet_shared.http)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422")
            if response is not None and "HTTPValidationError" in str(response):
                operation["responses"]["422"] = {"description": "Validation Error", **error_responses(422)[422]}
                operation["responses"]["422"]["content"]["application/json"]["schema"] = {
                    "$ref": "#/components/schemas/ErrorResponse"
                }
                operation["responses"]["422"].pop("model")
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def add_examples(schema: dict[str, Any]) -> None:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            for body in bodies:
                media = body.get("content", {}).get("application/json")
                if media is None or "example" in media or "examples" in media:
                    continue
                example = _example_of(media.get("schema", {}))
                if example is not None:
                    media["example"] = example


def _example_of(schema: dict[str, Any]) -> Any | None:
    if "$ref" in schema:
        return example_for(schema["$ref"].rsplit("/", 1)[-1])
    if schema.get("type") == "array":
        item = _example_of(schema.get("items", {}))
        return None if item is None else [item]
    return None
