"""A local HTTP server that stands where a stand-in sends its deliveries (a webhook URL, the bot's Slack endpoints):
it keeps every POST and answers as a test tells it to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def raw_request(path: str, headers: Mapping[str, str], raw: bytes) -> dict:
    return {"path": path, "headers": dict(headers), "raw": raw}


class Receiver:
    """Keeps each POST as `record(path, headers, raw body)` in `got`; answers it with the next status of `statuses`,
    then with `answer` (status, body, content type). `seen` is how a failed `wait` shows what came."""

    def __init__(
        self,
        path: str = "",
        record: Callable[[str, Mapping[str, str], bytes], Any] = raw_request,
        seen: Callable[[Any], Any] = repr,
    ):
        self.got: list = []
        self.seen = seen
        self.statuses: list[int] = []
        self.answer: tuple[int, str, str] = (200, "", "text/plain")
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                item = record(self.path, dict(self.headers.items()), raw)
                with receiver.cond:
                    status, body, ctype = receiver.answer
                    status = receiver.statuses.pop(0) if receiver.statuses else status
                    receiver.got.append(item)
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.url = self.base + path
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def find(self, pred: Callable[[Any], bool]) -> list:
        with self.cond:
            return [d for d in self.got if pred(d)]

    def last(self):
        with self.cond:
            return self.got[-1]

    def wait(self, pred: Callable[[Any], bool], timeout: float = 10.0):
        """The first request kept that `pred` accepts, waiting up to `timeout` s for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for d in self.got:
                    if pred(d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching request; got {[self.seen(d) for d in self.got]}")
                self.cond.wait(left)
