"""The service as `dataintel serve` runs it, plus a no-op POST route on the same stack.

The no-op route reads the body and answers 202 with a small JSON object, like ingest does,
so benchmarks report ingest as a ratio to what the HTTP stack alone costs on this machine.
Run: python bench/server.py --port 8765   (settings from DATAINTEL_* as usual)
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import Request
from fastapi.responses import Response

from dataintel.main import create_app
from dataintel.settings import Settings


def build() -> object:
    app = create_app(Settings())

    @app.post("/bench/noop", include_in_schema=False)
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")

    @app.get("/bench/noop", include_in_schema=False)
    async def noop_get() -> Response:
        return Response(b'{"values":{}}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(
        build(),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
