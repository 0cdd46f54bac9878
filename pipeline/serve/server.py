"""Start the server: load the runs once, bind (loopback unless told), print the URL, serve until Ctrl-C
or SIGTERM (uvicorn finishes requests in flight, then the batchers stop)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipeline.core.serve_settings import ServeSettings

API_KEY_VARIABLE = "ENCAJES_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bind(host: str, port: int) -> socket.socket:
    """Bind first, so ``--port 0`` can print the port it got, and a port in use fails before loading."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        from pipeline.core.errors import EncajesError

        sock.close()
        raise EncajesError(
            f"Cannot listen on {host}:{port} ({error.strerror}): pick another --port."
        ) from None
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog, not refused
    sock.set_inheritable(True)
    return sock


def serve(
    workdir: str | Path,
    settings: ServeSettings,
    models: Sequence[str] = (),
    poolings: Sequence[str] = (),
    layers: Sequence[str] = (),
) -> None:
    import uvicorn

    from pipeline.serve.app import create_app
    from pipeline.serve.service import Service

    if settings.api_key is None and os.environ.get(API_KEY_VARIABLE):
        settings = replace(settings, api_key=os.environ[API_KEY_VARIABLE])
    sock = bind(settings.host, settings.port)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"-> loading {workdir} (encoder, index and corpus of each run, once)")
    service = Service.load(workdir, settings, models, poolings, lambda text: say(f"   {text}"), layers)
    for run in service.runs:
        info = run.info()
        say(f"   {info['model']} / {info['pooling']}: {info['rows']:,} rows, {info['index_kind']} index, "
            f"{info['dtype']} on {run.resolved.device}")  # fmt: skip
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    say(f"-> serving on http://{shown}:{port}  (search page /, API docs /docs; Ctrl-C stops)")
    if settings.host not in LOOPBACK and not settings.api_key:
        say(f"   warning: listening beyond this machine without a key: anyone who reaches {shown}:{port} "
            f"can read the corpus; give --api-key or set {API_KEY_VARIABLE}")  # fmt: skip
    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="on")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the handler it
    # found: ours turns that into a clean exit (status 0), not a traceback or a death by signal
    previous = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("-> stopped")


class Stopped(Exception):
    """A stop signal arrived after the server had shut down."""


def stopped(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)
