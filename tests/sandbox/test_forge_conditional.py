"""The forge answers conditional requests as GitHub documents them, "Best practices for using the REST API", § Use
conditional requests (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api):

    "Most endpoints return an `etag` header, and many endpoints return a `last-modified` header. You can use the
    values of these headers to make conditional `GET` requests. If the response has not changed, you will receive a
    `304 Not Modified` response. Making a conditional request does not count against your primary rate limit if a
    `304` response is returned and the request was made while correctly authorized with an `Authorization` header."

Also what a GitHub App subscribes to (`GET /app` `events`): its webhook's events, none without one."""

from __future__ import annotations

import time

import jwt
import pytest

from sandbox.forge import create_app
from sandbox.forge.contract import rest_contract
from tests.support.app_keys import new_key, public_pem

REPO = "acme/churn-model"
ALICE = {"Authorization": "token ghp_alice"}
LISTING = f"/repos/{REPO}/issues/comments"
HOOKED, BARE = 123, 124  # an App with a webhook, and one without


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def forge(tmp_path, key):
    public = public_pem(key).decode()
    app = {"slug": "mlops-bot", "public_key": public}
    seed = {
        "users": {"alice": {"token": "ghp_alice"}},
        "repos": [{"full_name": REPO, "permissions": {"alice": "write"}}],
        "apps": [
            {**app, "id": HOOKED, "installation_id": 456, "webhook": {"url": "http://127.0.0.1:9/nobody", "secret": "s",
                                                                      "events": ["pull_request", "issue_comment"]}},
            {**app, "id": BARE, "slug": "other-bot", "installation_id": 457},
        ],
    }  # fmt: skip
    client = create_app(tmp_path / "forge", seed, "http://forge.test").test_client()
    number = client.post(f"/repos/{REPO}/issues", json={"title": "an issue"}, headers=ALICE).get_json()["number"]
    client.number = number
    for body in ("first", "second"):
        assert (
            client.post(f"/repos/{REPO}/issues/{number}/comments", json={"body": body}, headers=ALICE).status_code
            == 201
        )
    return client


def left(resp) -> tuple[int, int]:
    return int(resp.headers["X-RateLimit-Remaining"]), int(resp.headers["X-RateLimit-Used"])


def test_a_get_answers_an_etag_and_the_same_representation_the_same_etag(forge):
    first, again = forge.get(LISTING, headers=ALICE), forge.get(LISTING, headers=ALICE)
    assert first.status_code == again.status_code == 200
    assert first.headers["ETag"] == again.headers["ETag"] and first.headers["ETag"].startswith('W/"')
    # "A different page size, page number, or filter produces a different response with a different `etag`."
    assert forge.get(LISTING, query_string={"per_page": 1}, headers=ALICE).headers["ETag"] != first.headers["ETag"]


def test_an_unchanged_listing_is_304_with_no_body_and_costs_no_rate_limit(forge):
    first = forge.get(LISTING, headers=ALICE)
    again = forge.get(LISTING, headers={**ALICE, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert left(again) == left(first)  # "does not count against your primary rate limit"
    assert left(forge.get(LISTING, headers=ALICE))[1] == left(first)[1] + 1  # a 200 does


def test_a_changed_listing_is_200_with_another_etag(forge):
    tag = forge.get(LISTING, headers=ALICE).headers["ETag"]
    forge.post(f"/repos/{REPO}/issues/{forge.number}/comments", json={"body": "third"}, headers=ALICE)
    changed = forge.get(LISTING, headers={**ALICE, "If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert [c["body"] for c in changed.get_json()] == ["first", "second", "third"]


def test_if_none_match_compares_weakly_and_takes_a_list_or_a_star(forge):
    tag = forge.get(LISTING, headers=ALICE).headers["ETag"]
    strong = tag.removeprefix("W/")  # RFC 9110 § 13.1.2: If-None-Match uses the weak comparison
    for header in (strong, f'"nope", {tag}', "*"):
        assert forge.get(LISTING, headers={**ALICE, "If-None-Match": header}).status_code == 304, header
    assert forge.get(LISTING, headers={**ALICE, "If-None-Match": '"nope"'}).status_code == 200


def test_an_anonymous_304_counts_against_the_rate_limit(forge):
    # the sentence's condition: "…and the request was made while correctly authorized with an Authorization header"
    first = forge.get(LISTING)
    again = forge.get(LISTING, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and left(again)[1] == left(first)[1] + 1


def test_the_request_counts_count_a_304_as_a_request_and_apart(forge):
    forge.post("/sandbox/requests/reset")
    tag = forge.get(LISTING, headers=ALICE).headers["ETag"]
    forge.get(LISTING, headers={**ALICE, "If-None-Match": tag})
    counts = forge.get("/sandbox/requests").get_json()
    route = "GET /repos/{owner}/{repo}/issues/comments"
    assert (counts["total"], counts["by_route"][route], counts["by_user"]["alice"]) == (2, 2, 2)
    assert (counts["not_modified"], counts["not_modified_by_route"], counts["not_modified_by_user"]) == (
        1,
        {route: 1},
        {"alice": 1},
    )


def test_a_304_to_a_get_is_a_documented_answer_with_no_body(forge):
    contract = rest_contract()
    # issues/list-comments-for-repo lists 200, 404 and 422 only: the best-practices page documents 304 for any GET
    assert contract.response_problems("GET", LISTING, 304, None) == []
    assert contract.response_problems("GET", LISTING, 304, [{"id": 1}]) != []  # a 304 with a body is not GitHub's
    assert contract.response_problems("POST", f"/repos/{REPO}/issues/1/comments", 304, None) != []


def test_writes_are_not_conditional(forge):
    tag = forge.get(LISTING, headers=ALICE).headers["ETag"]
    # "Conditional requests for unsafe methods, such as `POST`, `PUT`, `PATCH`, and `DELETE` are not supported"
    made = forge.post(f"/repos/{REPO}/issues/{forge.number}/comments", json={"body": "x"},
                      headers={**ALICE, "If-None-Match": tag})  # fmt: skip
    assert made.status_code == 201


def app_jwt(key, app_id: int) -> dict:
    now = int(time.time())
    return {
        "Authorization": "Bearer " + jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(app_id)}, key, "RS256")
    }


def test_an_app_subscribes_to_its_webhook_s_events_and_to_none_without_one(forge, key):
    # GitHub, "Modifying a GitHub App registration": "Activate the GitHub App webhook. […] Under "Subscribe to
    # Events," select the webhook events you would like your GitHub App to receive."
    hooked = forge.get("/app", headers=app_jwt(key, HOOKED))
    assert hooked.status_code == 200 and hooked.get_json()["events"] == ["issue_comment", "pull_request"]
    assert rest_contract().response_problems("GET", "/app", 200, hooked.get_json()) == []
    assert forge.get("/app", headers=app_jwt(key, BARE)).get_json()["events"] == []
