"""The HTTP layer: routes, typed models and errors over a loaded ``Service``. Every error is JSON with a
message that says what to fix and a 4xx status (503 when busy); the server keeps serving after each."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.serve.batcher import Busy
from pipeline.serve.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    InfoResponse,
    ItemsResponse,
    SearchRequest,
    SearchResponse,
    SimilarResponse,
)
from pipeline.serve.service import RequestError, Service, embedding_payload
from pipeline.version import __version__

log = logging.getLogger("encajes.serve")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (404, 413, 422, 503)
}


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": kind, "param": param}}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """FastAPI's list of problems -> one sentence that says what to fix."""
    problems, param = [], None
    for problem in exc.errors()[:5]:
        if problem.get("type") == "json_invalid":
            return f"The body is not valid JSON ({problem.get('ctx', {}).get('error', 'parse error')}).", None
        location = list(problem.get("loc", ()))  # ["body" | "query" | "path", field, ...]
        where = ".".join(str(part) for part in location[1:] if part not in ("str", "list[str]"))
        param = param or where or None
        problems.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(problems) + ". See /docs for the request shapes.", param


class BodyLimit:
    """Refuse a request body above ``limit`` bytes with 413 before it is read in full."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise RequestError(413, f"The request body is over {self.limit} bytes.")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, f"The request body is over {self.limit} bytes: send fewer or shorter texts.")
        await response(scope, receive, send)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        lifespan=lifespan(service),
        title="encajes",
        version=__version__,
        summary="Similarity search and embeddings over a tweet corpus, with the encoder kept warm.",
    )
    app.add_middleware(BodyLimit, limit=service.max_body_bytes)
    page = resources.files("pipeline.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, exc.message, param=exc.param)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        return error(422, message, param=param)

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> JSONResponse:
        return error(503, f"Busy: {exc}.", "server_busy", headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail) + ": see /docs for the routes.")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def search_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info", response_model=InfoResponse)
    async def info() -> dict[str, Any]:
        limits = service.settings
        return {
            "version": __version__,
            "workdir": str(service.workdir),
            "runs": [run.info() for run in service.runs],
            "limits": {
                "max_k": limits.max_k,
                "max_texts": limits.max_texts,
                "max_text_chars": limits.max_text_chars,
                "max_row_ids": limits.max_row_ids,
                "max_body_bytes": service.max_body_bytes,
                "batch_wait_ms": limits.batch_wait_ms,
                "batch_tokens": limits.batch_tokens,
                "max_queued_texts": limits.max_queued_texts,
            },
        }

    @app.post("/search", response_model=SearchResponse, responses=ERRORS)
    async def search(request: SearchRequest) -> dict[str, Any]:
        """Nearest corpus rows to each query text (one result list per query)."""
        run = service.pick(request.model, request.pooling)
        queries = service.check_texts(request.query, "query")
        k = service.check_k(request.k)
        where = request.filter
        allowed = service.allowed(run, where.label, where.split) if where else None
        encoded = await run.encode(queries, k, allowed)
        return {"results": encoded.hits, "model": run.model, "pooling": run.pooling}

    @app.get("/similar/{row_id}", response_model=SimilarResponse, responses=ERRORS)
    async def similar(
        row_id: int,
        k: int = 10,
        model: str | None = None,
        pooling: str | None = None,
        label: str | None = None,
        split: str | None = None,
    ) -> dict[str, Any]:
        """Neighbours of a corpus row, the row itself left out and echoed as ``row``."""
        run = service.pick(model, pooling)
        service.check_row(run, row_id)
        k = service.check_k(k)
        allowed = service.allowed(run, label, split)
        hits = await run.batcher.call(run.searcher.similar, row_id, k, allowed)
        row = run.searcher.rows.records([row_id])[0]
        return {"row": row, "results": [hits], "model": run.model, "pooling": run.pooling}

    @app.get("/items", response_model=ItemsResponse, responses=ERRORS)
    async def items(
        row_ids: str = Query(description="Comma-separated row ids, e.g. 1,2,3."),
        model: str | None = None,
        pooling: str | None = None,
    ) -> dict[str, Any]:
        parts = [part.strip() for part in row_ids.split(",") if part.strip()]
        if not parts or not all(part.lstrip("-").isdigit() for part in parts):
            raise RequestError(422, f"row_ids must be comma-separated whole numbers (got {row_ids[:80]!r}).",
                               "row_ids")  # fmt: skip
        return {"items": service.items(service.pick(model, pooling), [int(p) for p in parts])}

    @app.get("/map", include_in_schema=False)
    async def map_points(model: str | None = None, pooling: str | None = None) -> dict[str, Any]:
        return service.map_points(service.pick(model, pooling))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """OpenAI's model list: the served runs' models."""
        data = [{"id": run.model, "object": "model", "owned_by": "encajes"} for run in service.runs]
        return {"object": "list", "data": data}

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
    async def embeddings(request: EmbeddingRequest) -> Response:
        """OpenAI-shaped embeddings: L2-normalised, with the run's prefix, pooling, max length and dtype."""
        run = service.pick(request.model, request.pooling)
        texts = service.check_texts(request.input, "input")
        encoded = await run.encode(texts)
        vectors = embedding_payload(encoded.vectors, request.encoding_format)
        body = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": run.model,
            "usage": {"prompt_tokens": encoded.tokens, "total_tokens": encoded.tokens},
        }
        # serialised here: validating 64 x 384 floats through the response model costs more than the model
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    return app


def lifespan(service: Service) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def running(_: FastAPI) -> AsyncIterator[None]:
        yield
        for run in service.runs:  # finish the batch in flight, then stop the worker threads
            await run.batcher.aclose()

    return running
