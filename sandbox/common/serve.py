"""`python -m sandbox.<name>`: the shared options, binding the port, running until SIGTERM/SIGINT, clean stop."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from werkzeug.serving import make_server


@dataclass(frozen=True)
class Server:
    name: str  # "forge" prints "sandbox forge listening on URL"
    prog: str
    description: str
    default_port: int
    build: Callable[[argparse.Namespace, str], Flask]  # (args, base URL) -> app; ValueError/OSError = bad args
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    bind_options: bool = True  # --host and --base-url (the workspace always binds 127.0.0.1)
    access_log: Callable[[argparse.Namespace], bool] = field(default=lambda args: False)


def on_shutdown(app: Flask, hook: Callable[[], None]) -> None:
    """Run `hook` when the server stops (save state, stop task processes)."""
    app.extensions.setdefault("sandbox.shutdown", []).append(hook)


def parse_args(server: Server, argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog=server.prog, description=server.description)
    parser.add_argument("--port", type=int, default=server.default_port, help="port (0 = pick a free one)")
    if server.bind_options:
        parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--data", required=True, help="state directory (created if missing)")
    server.add_arguments(parser)
    if server.bind_options:
        parser.add_argument("--base-url", default=None, help="public base URL (default http://HOST:PORT)")
    return parser, parser.parse_args(argv)


def serve(server: Server, argv: list[str] | None = None) -> None:
    parser, args = parse_args(server, argv)
    host = getattr(args, "host", "127.0.0.1")
    # The workspace's access log is how the benchmark counts polls; the others stay quiet unless asked.
    logging.getLogger("werkzeug").setLevel(logging.INFO if server.access_log(args) else logging.WARNING)
    app_slot: dict[str, Flask] = {}
    # Bound before the app exists: with --port 0 only the bound socket knows the base URL the app needs.
    httpd = make_server(host, args.port, lambda environ, start: app_slot["app"](environ, start), threaded=True)
    base_url = (getattr(args, "base_url", None) or f"http://{host}:{httpd.server_port}").rstrip("/")
    try:
        app = app_slot["app"] = server.build(args, base_url)
    except (OSError, ValueError) as exc:
        httpd.server_close()
        parser.error(str(exc))
    stop = lambda signum, frame: threading.Thread(target=httpd.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"sandbox {server.name} listening on {base_url}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        for hook in app.extensions.get("sandbox.shutdown", []):
            hook()
        sys.stdout.flush()
