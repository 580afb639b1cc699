"""The forge's GitHub App webhook: the events of the App's installations reach the App's URL with the headers GitHub
sends for App webhooks, every attempt is recorded, and the App lists and redelivers them through the REST API
(`apps/list-webhook-deliveries`, `apps/get-webhook-delivery`, `apps/redeliver-webhook-delivery`), each answer held
to the operation's schema in GitHub's OpenAPI description."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from devstack.waiting import wait_until
from sandbox.forge import create_app
from sandbox.forge.contract import rest_contract
from tests.support.app_keys import new_key, public_pem
from tests.support.receivers import Receiver

REPO, APP_ID, INSTALLATION_ID, SECRET = "acme/churn-model", 123, 456, "app-hook-secret"


@pytest.fixture
def receiver():
    """The App's webhook URL: answers each delivery with the next of `statuses` (then 200)."""
    r = Receiver("/webhooks/github")
    yield r
    r.close()


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def forge(tmp_path, receiver, key):
    public = public_pem(key)
    seed = {
        "users": {"alice": {"token": "ghp_alice"}},
        "repos": [{"full_name": REPO, "permissions": {"alice": "write"}}],
        "apps": [
            {
                "id": APP_ID,
                "slug": "mlops-bot",
                "installation_id": INSTALLATION_ID,
                "public_key": public.decode(),
                "webhook": {"url": receiver.url, "secret": SECRET, "events": ["*"]},
            }
        ],
    }
    app = create_app(tmp_path / "forge", seed, "http://forge.test")
    return app.test_client()


def app_jwt(key) -> dict:
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}, key, algorithm="RS256")
    return {"Authorization": f"Bearer {token}"}


ALICE = {"Authorization": "token ghp_alice"}


def answered(resp, method: str, path: str):
    """The answer's JSON, once held to the operation's documented status and schema."""
    assert rest_contract().response_problems(method, path, resp.status_code, resp.get_json()) == []
    return resp.get_json()


def open_issues(forge, n: int) -> None:
    for i in range(n):
        assert forge.post(f"/repos/{REPO}/issues", json={"title": f"issue {i}"}, headers=ALICE).status_code == 201


def attempts(forge, key, n: int) -> list[dict]:
    """The App's listed deliveries once `n` attempts are made (the forge delivers in the background)."""
    path = "/app/hook/deliveries"
    return wait_until(
        lambda: (lambda d: d if len(d) >= n else None)(forge.get(path, headers=app_jwt(key)).get_json()),
        10,
        f"{n} attempts",
    )


def test_the_app_webhook_gets_its_installation_s_events_with_github_s_app_headers(forge, receiver, key):
    open_issues(forge, 1)
    wait_until(lambda: receiver.got, 10, "a delivery")
    [got] = receiver.got
    headers, raw = got["headers"], got["raw"]
    assert headers["X-GitHub-Event"] == "issues"
    assert headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(APP_ID)
    assert headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert json.loads(raw)["installation"]["id"] == INSTALLATION_ID
    [item] = attempts(forge, key, 1)
    assert (item["guid"], item["event"], item["action"]) == (headers["X-GitHub-Delivery"], "issues", "opened")
    assert (item["status"], item["status_code"], item["redelivery"]) == ("OK", 200, False)
    assert item["installation_id"] == INSTALLATION_ID and item["repository_id"]


def test_deliveries_are_listed_newest_first_a_page_at_a_time_with_a_next_cursor(forge, key):
    open_issues(forge, 5)
    everything = attempts(forge, key, 5)
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    seen, path, params = [], "/app/hook/deliveries", {"per_page": 2}
    while True:
        resp = forge.get(path, query_string=params, headers=app_jwt(key))
        page = answered(resp, "GET", path)
        assert len(page) <= 2
        seen += [d["id"] for d in page]
        link = resp.headers.get("Link")
        if not link:
            break
        assert link.endswith('; rel="next"')
        params = {k: v[0] for k, v in parse_qs(urlsplit(link[1 : link.index(">")]).query).items()}
    assert seen == [d["id"] for d in everything]
    # "per_page: The number of results per page (max 100)."
    many = forge.get(path, query_string={"per_page": 500}, headers=app_jwt(key))
    assert len(answered(many, "GET", path)) == 5 and "Link" not in many.headers


def test_a_cursor_that_no_link_gave_is_a_bad_request(forge, key):
    # The cursor parameter: "Used for pagination: the starting delivery from which the page of deliveries is fetched.
    # Refer to the `link` header for the next and previous page cursors." The operation documents 400 Bad Request.
    open_issues(forge, 1)
    attempts(forge, key, 1)
    for cursor in ("not-a-cursor", "v1_abc"):
        resp = forge.get("/app/hook/deliveries", query_string={"cursor": cursor}, headers=app_jwt(key))
        assert resp.status_code == 400
        answered(resp, "GET", "/app/hook/deliveries")


def test_only_the_app_s_jwt_reads_its_deliveries(forge, key):
    open_issues(forge, 1)
    attempts(forge, key, 1)
    installation = forge.post(f"/app/installations/{INSTALLATION_ID}/access_tokens", headers=app_jwt(key))
    token = {"Authorization": f"token {installation.get_json()['token']}"}
    # GitHub's REST reference for these endpoints: "You must use a JWT to access this endpoint."
    for who in (ALICE, token):
        assert forge.get("/app/hook/deliveries", headers=who).status_code == 401
        assert forge.post("/app/hook/deliveries/1/attempts", headers=who).status_code == 401
    assert forge.get("/app/hook/deliveries", headers=app_jwt(key)).status_code == 200


def test_a_redelivery_is_a_new_attempt_with_the_same_guid(forge, receiver, key):
    receiver.statuses = [503]
    open_issues(forge, 1)
    [failed] = attempts(forge, key, 1)
    assert (failed["status_code"], failed["redelivery"]) == (503, False) and failed["status"] != "OK"

    path = f"/app/hook/deliveries/{failed['id']}/attempts"
    assert answered(forge.post(path, headers=app_jwt(key)), "POST", path) == {}
    again, first = attempts(forge, key, 2)
    assert first["id"] == failed["id"] and again["id"] > failed["id"]
    assert (again["guid"], again["redelivery"], again["status_code"], again["status"]) == (
        failed["guid"],
        True,
        200,
        "OK",
    )
    assert [g["headers"]["X-GitHub-Delivery"] for g in receiver.got] == [failed["guid"]] * 2
    assert receiver.got[0]["raw"] == receiver.got[1]["raw"]

    one = f"/app/hook/deliveries/{again['id']}"
    full = answered(forge.get(one, headers=app_jwt(key)), "GET", one)
    assert full["request"]["headers"]["X-GitHub-Delivery"] == failed["guid"]
    assert full["request"]["payload"]["action"] == "opened" and full["url"] == receiver.url
