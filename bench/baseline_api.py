"""The gateway benchmark's baseline: FastAPI answering the same JSON as the gateway, without the broker.

`python -m bench.baseline_api PORT STATUS_JSON SENT_JSON` serves `GET /api/v1/waha/status` and
`POST /api/v1/waha/messages` with those bodies, on uvicorn as the services are served (uvloop,
httptools, no access log).
"""

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def create_app(status: dict[str, Any], sent: dict[str, Any]) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/v1/waha/status")
    async def get_status() -> JSONResponse:
        return JSONResponse(status)

    @app.post("/api/v1/waha/messages")
    async def send(request: Request) -> JSONResponse:
        await request.json()
        return JSONResponse(sent, status_code=201)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


def main() -> None:
    import json

    port, status, sent = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
    uvicorn.run(create_app(status, sent), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
