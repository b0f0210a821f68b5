"""The service as `dataintel serve` runs it (plus no-op routes), or the serving baseline: a
bare FastAPI app, under the same server command.

  python bench/server.py --port 8765                      # the service (DATAINTEL_* settings)
  python bench/server.py --port 8766 --bare vector.json   # the baseline
  python bench/server.py --port 8767 --constant body.json --path /v1/analytics/overview
  BENCH_PROFILE=out.prof python bench/server.py ...        # cProfile of the loop, at exit

The service gets a no-op POST route (reads the body, answers 202 like ingest does) and a
no-op GET, so benchmarks can report ratios to what its own HTTP stack costs. The baseline is
a plain ``FastAPI()`` with no middleware, answering the serving routes' paths with a constant
dict: the vector in ``vector.json`` (a real 20-value vector, so the same JSON shape and size)
for ``GET /features/{project}/users/{user_id}``, and 100 of them for the batch POST. With
``--constant``, the bare app answers ``GET --path`` with that file's JSON (as a dict, like
the vector baseline).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response


def build() -> FastAPI:
    from dataintel.main import create_app
    from dataintel.settings import Settings

    app = create_app(Settings())

    @app.post("/bench/noop", include_in_schema=False)
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")

    @app.get("/bench/noop", include_in_schema=False)
    async def noop_get() -> Response:
        return Response(b'{"values":{}}', media_type="application/json")

    return app


def build_bare(vector: dict[str, Any]) -> FastAPI:
    app = FastAPI()
    batch = {"as_of": vector["as_of"], "results": [vector] * 100}

    @app.get("/features/{project_id}/users/{user_id}")
    async def user(project_id: str, user_id: str) -> dict[str, Any]:  # noqa: ARG001
        return vector

    @app.post("/features/{project_id}/users/batch")
    async def users(project_id: str, request: Request) -> dict[str, Any]:  # noqa: ARG001
        await request.body()
        return batch

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def build_constant(path: str, body: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get(path)
    async def constant() -> dict[str, Any]:
        return body

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--bare", type=Path, help="serve the baseline with this vector")
    parser.add_argument("--constant", type=Path, help="a bare app answering this JSON at --path")
    parser.add_argument("--path", default="/", help="the GET path of --constant")
    args = parser.parse_args()
    if args.constant:
        app = build_constant(args.path, json.loads(args.constant.read_text()))
    else:
        app = build_bare(json.loads(args.bare.read_text())) if args.bare else build()
    profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile of the event loop thread
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)


if __name__ == "__main__":
    main()
