"""Slow or idle clients do not freeze the Procfile's web process: signed deliveries are still answered.

With gunicorn gthread each connection held a thread until its body was in, so four clients sending
a body slowly blocked every delivery for minutes (issue #12); GitHub gives up after 10 s and never
redelivers on its own.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest

from core import events
from devstack import setups
from tests.conftest import ROOT, SECRETS, payload

SECRET = SECRETS["GITHUB_WEBHOOK_SECRET"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    env = {"MLOPS_BOT_CONFIG": str(ROOT / "config.toml"), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    # one process of four threads: the size at which four slow clients used to freeze it
    with setups.receiver_only(tmp_path_factory.mktemp("slow"), env | SECRETS, workers=1, threads=4) as stack:
        yield urlsplit(stack.url("web"))


def request_head(web, body: bytes) -> bytes:
    return (
        f"POST /webhooks/github HTTP/1.1\r\nHost: {web.netloc}\r\nContent-Type: application/json\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: {events.github_signature(SECRET, body)}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()


def status_of(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def fresh_body() -> bytes:
    """A push nobody sent before: the receiver dedupes on signed content, so each request is its own commit."""
    return json.dumps(payload("push_new_branch") | {"after": secrets.token_hex(20)}).encode()


def test_a_delivery_is_answered_within_a_second_while_eight_clients_hold_their_bodies(web):
    slow = []
    for _ in range(4):  # headers and half of the body, then nothing
        body = fresh_body()
        s = socket.create_connection((web.hostname, web.port), timeout=15)
        s.sendall(request_head(web, body) + body[: len(body) // 2])
        slow.append((s, body))
    idle = [socket.create_connection((web.hostname, web.port), timeout=15) for _ in range(4)]  # not a byte
    try:
        time.sleep(0.5)  # the server has taken them in
        for _ in range(3):
            with socket.create_connection((web.hostname, web.port), timeout=1) as s:
                body = fresh_body()
                started = time.monotonic()
                s.sendall(request_head(web, body) + body)
                assert status_of(s) == 202
                assert time.monotonic() - started < 1
        # the slow ones are still heard out when their bodies end
        for s, body in slow:
            s.sendall(body[len(body) // 2 :])
            assert status_of(s) == 202
    finally:
        for s in [s for s, _ in slow] + idle:
            s.close()
