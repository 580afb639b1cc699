"""The same bad input through the Procfile's web process (gunicorn), over a real socket.

The Flask test client cannot show how the server frames a body: gunicorn de-chunks a
`Transfer-Encoding: chunked` request and hands it on without Content-Length, which is the path
where a body over the limit used to be cut short silently and answered 401 instead of 413.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
from urllib.parse import urlsplit

import pytest

from core import events
from devstack import setups
from tests.conftest import ROOT, SECRETS, payload

LIMIT = 26_214_400  # config.toml's bot.max_body_bytes


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    env = {"MLOPS_BOT_CONFIG": str(ROOT / "config.toml"), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    with setups.receiver_only(tmp_path_factory.mktemp("receiver"), env | SECRETS, workers=1, threads=4) as stack:
        yield urlsplit(stack.url("web"))


def post(web, body: bytes, *, chunked: bool = False, event: str = "push") -> tuple[int, dict, float]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"http-{time.monotonic_ns()}",
        "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body),
    }
    conn = http.client.HTTPConnection(web.hostname, web.port, timeout=10)
    started = time.perf_counter()
    try:
        if chunked:  # 64 KiB chunks, no Content-Length
            conn.request("POST", "/webhooks/github", (body[i : i + 65536] for i in range(0, len(body), 65536)), headers)
        else:
            conn.request("POST", "/webhooks/github", body, headers)
        r = conn.getresponse()
        answer = json.loads(r.read() or b"{}")
    except (BrokenPipeError, ConnectionResetError):  # the server may answer and close before the body ends
        r = conn.getresponse()
        answer = json.loads(r.read() or b"{}")
    finally:
        conn.close()
    return r.status, answer, time.perf_counter() - started


def test_a_chunked_body_over_the_limit_is_413_over_http(web):
    status, answer, _ = post(web, b"x" * (LIMIT + 10), chunked=True)
    assert status == 413 and answer["reason"] == "body too large"


def test_a_chunked_valid_delivery_is_queued_over_http(web):
    status, answer, _ = post(web, json.dumps(payload("push_new_branch")).encode(), chunked=True)
    assert status == 202 and answer["status"] == "queued"


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"ref": "\xff\xfe"}', b"", json.dumps({"ref": 5}).encode()]
)
def test_bad_bodies_are_4xx_over_http(web, body):
    status, answer, elapsed = post(web, body)
    assert 400 <= status < 500 or answer.get("status") == "ignored", (status, answer)
    assert elapsed < 2
    fresh = payload("push_new_branch") | {"after": secrets.token_hex(20)}  # content seen before is a duplicate
    status, _, _ = post(web, json.dumps(fresh).encode())
    assert status == 202  # and the process keeps answering
