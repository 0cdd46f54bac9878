"""The HTTP app: the routes of ``pipeline.serve.routes`` over a loaded ``Service``, and its errors. Every
error is JSON with a message that says what to fix and a 4xx status (503 when busy); the server keeps
serving after each."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.core.version import __version__
from pipeline.serve.batcher import Busy
from pipeline.serve.metrics import Measured, Metrics
from pipeline.serve.routes import router
from pipeline.serve.service import RequestError, Service


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
        hint = " (filters go in 'filter')" if where == "where" else ""
        problems.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}{hint}")
    return "Invalid request: " + "; ".join(problems) + ". See /docs for the request shapes.", param


class BodyLimit:
    """Refuse a request body above ``limit`` bytes with 413: at once when its Content-Length says so,
    else (chunked) as soon as the bytes read pass the limit, before the app parses any of it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.limit:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        messages: list[Message] = []  # no length given: read it here, bounded, then hand it on
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._refuse(scope, receive, send)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error(413, f"The request body is over {self.limit} bytes: send fewer or shorter texts.")
        await response(scope, receive, send)


OPEN_PATHS = ("/health", "/")  # no data: the liveness probe, and the page (which asks for the key)


class KeyRequired:
    """Refuse with 401 every request but those of ``OPEN_PATHS`` that lacks ``Authorization: Bearer
    KEY`` (what OpenAI's clients send), before its body is read."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            return await self.app(scope, receive, send)
        said = "a wrong key" if given else "no key"
        response = error(401, f"This server needs its API key ({said} was given): send the header "
                         "'Authorization: Bearer KEY' (OpenAI clients: api_key=KEY).", "authentication_error",
                         headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        await response(scope, receive, send)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        lifespan=lifespan(service),
        title="encajes",
        version=__version__,
        summary="Similarity search and embeddings over a tweet corpus, with the encoder kept warm.",
    )
    app.add_middleware(BodyLimit, limit=service.max_body_bytes)  # the last added runs first:
    if service.settings.api_key:
        app.add_middleware(KeyRequired, key=service.settings.api_key)  # no key, no body read
    metrics = Metrics()
    metrics.watch(service)
    routes = [*router.routes, *app.router.routes]  # ours, and FastAPI's /docs and /openapi.json
    app.add_middleware(Measured, metrics=metrics, routes=routes)  # every answer counted
    app.state.metrics = metrics

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

    app.state.service = service
    app.include_router(router)
    return app


def lifespan(service: Service) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def running(_: FastAPI) -> AsyncIterator[None]:
        yield
        for run in service.runs:  # finish the pass in flight, then stop the worker threads
            run.batcher.close()

    return running
