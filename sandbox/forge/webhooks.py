"""Asynchronous, in-order webhook delivery (like GitHub's Hookshot, no automatic retries)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import queue
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime

TIMEOUT_S = 10
MAX_BODY = 8192


# GitHub: "application/x-www-form-urlencoded will send the JSON payload as a form parameter called `payload`"
CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


def wire_body(payload: bytes, content_type: str) -> bytes:
    """What goes over the wire: the JSON itself, or `payload=<url-encoded JSON>` for a `form` hook."""
    return urllib.parse.urlencode({"payload": payload.decode()}).encode() if content_type == "form" else payload


def sign(secret: str, body: bytes) -> dict[str, str]:
    key = secret.encode()
    return {
        "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
    }


class Dispatcher:
    """One background thread delivering queued deliveries in order."""

    def __init__(self, on_done):
        self._q: queue.Queue = queue.Queue()
        self._on_done = on_done  # callback(record, result_dict)
        self._thread = threading.Thread(target=self._run, name="forge-webhooks", daemon=True)
        self._thread.start()

    @staticmethod
    def build(
        hook_id: int,
        target_id: int,
        url: str,
        secret: str | None,
        event: str,
        body: bytes,
        guid: str | None = None,
        content_type: str = "json",
        target_type: str = "repository",
    ) -> dict:
        """Headers for a delivery of `body` (the wire body: see `wire_body`), signed over those bytes. The target is
        where the hook was made: a repository (its id), or a GitHub App (`integration`, the App's id)."""
        guid = guid or str(uuid.uuid4())
        headers = {
            "Content-Type": CONTENT_TYPES[content_type],
            "User-Agent": "GitHub-Hookshot/sandbox",
            "Accept": "*/*",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(hook_id),
            "X-GitHub-Hook-Installation-Target-Type": target_type,
            "X-GitHub-Hook-Installation-Target-ID": str(target_id),
        }
        if secret:
            headers.update(sign(secret, body))
        return {"guid": guid, "url": url, "request_headers": headers}

    def enqueue(self, record: dict, body: bytes) -> None:
        self._q.put((record, body))

    def pending(self) -> int:
        return self._q.unfinished_tasks

    def _run(self) -> None:
        while True:
            record, body = self._q.get()
            try:
                result = self._deliver(record, body)
            except Exception as exc:  # never let the thread die
                result = {
                    "status": "failed",
                    "status_code": None,
                    "error": repr(exc),
                    "response_body": "",
                    "response_headers": {},
                    "duration_ms": 0,
                }
            result["delivered_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                self._on_done(record, result)
            finally:
                self._q.task_done()

    def _deliver(self, record: dict, body: bytes) -> dict:
        # http.client keeps the header case exactly as GitHub sends it (urllib would capitalize it)
        url = urllib.parse.urlsplit(record["url"])
        conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        start = time.monotonic()
        status, text, headers, error = None, "", {}, None
        conn = conn_cls(url.hostname, url.port, timeout=TIMEOUT_S)
        try:
            conn.putrequest("POST", path, skip_accept_encoding=True)
            for k, v in record["request_headers"].items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            status = resp.status
            text = resp.read(MAX_BODY).decode("utf-8", "replace")
            headers = dict(resp.getheaders())
        except Exception as exc:  # timeout, refused, ...
            error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        duration = round((time.monotonic() - start) * 1000, 1)
        ok = status is not None and 200 <= status < 300
        return {
            "status": "OK" if ok else "failed",
            "status_code": status,
            "response_body": text,
            "response_headers": headers,
            "duration_ms": duration,
            "error": error,
        }
