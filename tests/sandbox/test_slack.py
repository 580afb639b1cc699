"""End-to-end tests of the sandbox Slack: real subprocess, real slack_sdk clients, a real signed-request receiver."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.support import stand_ins
from tests.support.receivers import Receiver

SECRET = "slack-test-secret"
TOKEN = "xoxb-sandbox"


# ---------------------------------------------------------------- receiver (stands in for the bot)
@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def _start(tmp: Path, receiver: Receiver, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "SLACK_SIGNING_SECRET"}
    args = ["--data", str(tmp / "data"), "--token", TOKEN, "--signing-secret", SECRET]
    args += ["--interactions-url", receiver.base + "/webhooks/slack/interactions", *extra]
    return stand_ins.start("slack", args, env)


@pytest.fixture(scope="module")
def slack(tmp_path_factory, receiver):
    tmp = tmp_path_factory.mktemp("slack")
    proc, base = _start(tmp, receiver)
    yield {"base": base, "tmp": tmp, "proc": proc}
    stand_ins.stop(proc)


@pytest.fixture
def client(slack) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack["base"] + "/api/")


def approval_blocks(version: int) -> list[dict]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Promote *churn-model* v{version} to champion?"}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "style": "primary",
                    "value": f"churn-model:{version}",
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "action_id": "reject",
                    "style": "danger",
                    "value": f"churn-model:{version}:reject",
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]


def _verify(req: dict) -> None:
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(req["raw"], req["headers"]), "signature does not verify"
    assert req["headers"]["X-Slack-Signature"].startswith("v0=")
    assert abs(int(req["headers"]["X-Slack-Request-Timestamp"]) - time.time()) < 60
    assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


# ---------------------------------------------------------------- Web API through slack_sdk
def test_auth(client, slack):
    me = client.auth_test()
    assert me["ok"] and me["user_id"] == "U0BOT" and me["team_id"] == "T0SANDBOX"
    bad = WebClient(token="xoxb-wrong", base_url=slack["base"] + "/api/")
    with pytest.raises(SlackApiError) as e:
        bad.chat_postMessage(channel="#deploys", text="nope")
    assert e.value.response["error"] == "invalid_auth"
    assert e.value.response.status_code == 200
    with pytest.raises(SlackApiError) as e:
        WebClient(base_url=slack["base"] + "/api/").auth_test()
    assert e.value.response["error"] == "not_authed"


def test_message_update_thread(client, slack):
    posted = client.chat_postMessage(channel="#deploys", text="Promote churn-model v7?", blocks=approval_blocks(7))
    assert posted["ok"] and posted["channel"].startswith("C")
    ts, cid = posted["ts"], posted["channel"]
    msg = posted["message"]
    assert msg["ts"] == ts and msg["text"] == "Promote churn-model v7?" and msg["bot_id"] == "B0BOT"
    assert msg["blocks"][1]["elements"][0]["action_id"] == "approve"
    assert msg["blocks"][0]["block_id"]  # generated like Slack

    # same channel by name or id
    again = client.chat_postMessage(channel="deploys", text="second")
    assert again["channel"] == cid and float(again["ts"]) > float(ts)
    assert client.chat_postMessage(channel=cid, text="third")["channel"] == cid

    upd = client.chat_update(
        channel=cid, ts=ts, text="Promote churn-model v7? (approved by bob)", blocks=approval_blocks(7)[:1]
    )
    assert upd["ok"] and upd["ts"] == ts and upd["text"].endswith("(approved by bob)")
    assert len(upd["message"]["blocks"]) == 1 and "edited" in upd["message"]

    r1 = client.chat_postMessage(channel=cid, thread_ts=ts, text="training run 42 started")
    r2 = client.chat_postMessage(channel="#deploys", thread_ts=ts, text="run 42 finished")
    assert r1["message"]["thread_ts"] == ts

    thread = client.conversations_replies(channel=cid, ts=ts)
    assert [m["text"] for m in thread["messages"]] == [
        "Promote churn-model v7? (approved by bob)",
        "training run 42 started",
        "run 42 finished",
    ]
    assert thread["messages"][0]["reply_count"] == 2 and thread["messages"][0]["latest_reply"] == r2["ts"]
    # asking with a reply's ts gives the same thread
    assert len(client.conversations_replies(channel=cid, ts=r1["ts"])["messages"]) == 3

    history = client.conversations_history(channel=cid)
    texts = [m["text"] for m in history["messages"]]
    assert texts == ["third", "second", "Promote churn-model v7? (approved by bob)"]  # newest first, no replies
    paged = client.conversations_history(channel=cid, limit=2)
    assert paged["has_more"] and paged["response_metadata"]["next_cursor"]

    assert client.reactions_add(channel=cid, timestamp=ts, name="white_check_mark")["ok"]
    with pytest.raises(SlackApiError) as e:
        client.reactions_add(channel=cid, timestamp=ts, name="white_check_mark")
    assert e.value.response["error"] == "already_reacted"

    eph = client.chat_postEphemeral(channel=cid, user="U0BOB", text="only for bob")
    assert eph["message_ts"]

    with pytest.raises(SlackApiError) as e:
        client.chat_update(channel=cid, ts="1.000001", text="x")
    assert e.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as e:
        client.conversations_history(channel="C9999")
    assert e.value.response["error"] == "channel_not_found"

    view = requests.get(slack["base"] + "/sandbox/messages", params={"channel": "deploys"}).json()
    top = next(m for m in view["messages"] if m["ts"] == ts)
    assert [r["text"] for r in top["replies"]] == ["training run 42 started", "run 42 finished"]
    assert top["updates"][0]["previous"]["text"] == "Promote churn-model v7?"
    assert top["reactions"] == [{"name": "white_check_mark", "users": ["U0BOT"], "count": 1}]
    assert view["ephemeral"][-1]["text"] == "only for bob" and view["ephemeral"][-1]["user"] == "U0BOB"

    counts = requests.get(slack["base"] + "/sandbox/requests").json()
    assert counts["chat.postMessage"] >= 5 and counts["chat.update"] >= 1 and counts["conversations.replies"] >= 2


def test_users(client):
    assert client.users_info(user="U0BOB")["user"]["name"] == "bob"
    assert client.users_info(user="U0CAROL")["user"]["profile"]["display_name"] == "carol"
    with pytest.raises(SlackApiError) as e:
        client.users_info(user="U0NOBODY")
    assert e.value.response["error"] == "user_not_found"


def test_form_encoded_call(client):
    """slack_sdk's generic api_call with form params (blocks as JSON text) works too."""
    resp = client.api_call(
        "chat.postMessage", params={"channel": "#forms", "text": "hi", "blocks": json.dumps(approval_blocks(1))}
    )
    assert resp["ok"] and resp["message"]["blocks"][1]["elements"][1]["action_id"] == "reject"


# ---------------------------------------------------------------- response URLs
def test_webhook_client_response_url(slack):
    url = requests.get(slack["base"] + "/sandbox/response-url").json()["url"]
    assert url.startswith(slack["base"] + "/response/")
    resp = WebhookClient(url=url).send(
        text="Approved churn-model v7", response_type="in_channel", replace_original=False
    )
    assert resp.status_code == 200 and resp.body == "ok"
    resp = WebhookClient(url=url).send_dict({"text": "in a thread", "thread_ts": "123.456"})
    assert resp.status_code == 200
    posts = [r for r in requests.get(slack["base"] + "/sandbox/responses").json()["responses"] if r["url"] == url]
    assert posts[0]["body"]["text"] == "Approved churn-model v7"
    assert posts[0]["body"]["response_type"] == "in_channel" and posts[0]["body"]["replace_original"] is False
    assert posts[1]["body"]["thread_ts"] == "123.456"
    bad = WebhookClient(url=slack["base"] + "/response/nope").send(text="x")
    assert bad.status_code == 404


# ---------------------------------------------------------------- simulated people
def test_click_posts_signed_block_actions(client, slack, receiver):
    posted = client.chat_postMessage(channel="#approvals", text="Promote v9?", blocks=approval_blocks(9))
    receiver.answer = (200, "", "text/plain")
    r = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "U0BOB", "channel": posted["channel"], "ts": posted["ts"], "action_id": "approve"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 200 and out["body"] == ""

    req = receiver.last()
    assert req["path"] == "/webhooks/slack/interactions"
    _verify(req)
    form = parse_qs(req["raw"].decode())
    payload = json.loads(form["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0SANDBOX"}
    assert payload["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": posted["channel"],
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": posted["channel"], "name": "approvals"}
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["text"] == "Promote v9?"
    action = payload["actions"][0]
    assert action["action_id"] == "approve" and action["value"] == "churn-model:9" and action["type"] == "button"
    assert action["block_id"] == "approval" and action["action_ts"]
    assert payload["api_app_id"] and payload["token"] and payload["team"]["id"] == "T0SANDBOX"
    assert payload["trigger_id"] == out["trigger_id"]

    # the response_url in the payload replaces the original message when the bot answers through it
    resp = WebhookClient(url=payload["response_url"]).send(text="Approved by bob", replace_original=True)
    assert resp.status_code == 200
    thread = client.conversations_replies(channel=posted["channel"], ts=posted["ts"])
    assert thread["messages"][0]["text"] == "Approved by bob"

    # the replaced message has no buttons left (replace_original replaces the whole message, like Slack)
    gone = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "U0BOB", "channel": posted["channel"], "ts": posted["ts"], "action_id": "approve"},
    )
    assert gone.status_code == 404 and "approve" in gone.json()["error"]

    # another click: new trigger_id, new response_url; the receiver's status and body come back
    other = client.chat_postMessage(channel="#approvals", text="Promote v8?", blocks=approval_blocks(8))
    receiver.answer = (401, "bad signature", "text/plain")
    again = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "carol", "channel": "approvals", "ts": other["ts"], "action_id": "approve"},
    ).json()
    assert again["status"] == 401 and again["body"] == "bad signature"
    assert again["trigger_id"] != out["trigger_id"] and again["response_url"] != payload["response_url"]
    receiver.answer = (200, "", "text/plain")

    missing = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "U0BOB", "channel": other["channel"], "ts": other["ts"], "action_id": "nope"},
    )
    assert missing.status_code == 404 and "approve" in missing.json()["error"]
    unknown_user = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "mallory", "channel": other["channel"], "ts": other["ts"], "action_id": "approve"},
    )
    assert unknown_user.status_code == 404


def test_click_reject_button(client, slack, receiver):
    posted = client.chat_postMessage(channel="#approvals", text="Promote v10?", blocks=approval_blocks(10))
    out = requests.post(
        slack["base"] + "/sandbox/click",
        json={"user": "U0ALICE", "channel": "#approvals", "ts": posted["ts"], "action_id": "reject"},
    ).json()
    assert out["status"] == 200
    req = receiver.last()
    _verify(req)
    payload = json.loads(parse_qs(req["raw"].decode())["payload"][0])
    assert payload["actions"][0]["value"] == "churn-model:10:reject" and payload["user"]["id"] == "U0ALICE"


def test_command_posts_signed_slash_command(slack, receiver):
    receiver.answer = (200, json.dumps({"response_type": "ephemeral", "text": "queued"}), "application/json")
    r = requests.post(
        slack["base"] + "/sandbox/command",
        json={
            "user": "U0BOB",
            "command": "/mlops",
            "text": "approve churn-model 7",
            "channel": "#deploys",
            "url": receiver.base + "/webhooks/slack/commands",
        },
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 200 and json.loads(out["body"])["text"] == "queued"
    req = receiver.last()
    assert req["path"] == "/webhooks/slack/commands"
    _verify(req)
    form = {k: v[0] for k, v in parse_qs(req["raw"].decode(), keep_blank_values=True).items()}
    assert form["command"] == "/mlops" and form["text"] == "approve churn-model 7"
    assert form["user_id"] == "U0BOB" and form["user_name"] == "bob"
    assert form["channel_name"] == "deploys" and form["channel_id"].startswith("C")
    assert form["team_id"] == "T0SANDBOX" and form["team_domain"] and form["api_app_id"] and form["token"]
    assert form["response_url"].startswith(slack["base"] + "/response/") and form["trigger_id"] == out["trigger_id"]

    # the immediate answer is recorded, and the response_url works for a later answer
    assert (
        WebhookClient(url=form["response_url"]).send(text="promoted v7", response_type="in_channel").status_code == 200
    )
    posts = [
        p
        for p in requests.get(slack["base"] + "/sandbox/responses").json()["responses"]
        if p["url"] == form["response_url"]
    ]
    assert [(p["via"], p["body"]["text"]) for p in posts] == [
        ("command_reply", "queued"),
        ("response_url", "promoted v7"),
    ]
    view = requests.get(slack["base"] + "/sandbox/messages", params={"channel": "deploys"}).json()
    assert view["messages"][-1]["text"] == "promoted v7" and view["messages"][-1]["via"] == "response_url"
    receiver.answer = (200, "", "text/plain")


def test_state_survives_restart(tmp_path, receiver):
    proc, base = _start(tmp_path, receiver)
    try:
        c = WebClient(token=TOKEN, base_url=base + "/api/")
        posted = c.chat_postMessage(channel="#persist", text="kept")
    finally:
        stand_ins.stop(proc)
    state = json.loads((tmp_path / "data" / "state.json").read_text())
    assert any(ch["name"] == "persist" for ch in state["channels"].values())
    proc, base = _start(tmp_path, receiver)
    try:
        c = WebClient(token=TOKEN, base_url=base + "/api/")
        assert c.conversations_history(channel=posted["channel"])["messages"][0]["ts"] == posted["ts"]
        assert float(c.chat_postMessage(channel="#persist", text="next")["ts"]) > float(posted["ts"])
    finally:
        stand_ins.stop(proc)


def test_users_seed(tmp_path, receiver):
    (tmp_path / "users.toml").write_text(
        '[users]\nU0DAVE = "dave"\nU0ERIN = { name = "erin", real_name = "Erin E." }\n'
    )
    proc, base = _start(tmp_path, receiver, ["--users", str(tmp_path / "users.toml")])
    try:
        c = WebClient(token=TOKEN, base_url=base + "/api/")
        assert c.users_info(user="U0DAVE")["user"]["name"] == "dave"
        assert c.users_info(user="U0ERIN")["user"]["real_name"] == "Erin E."
        with pytest.raises(SlackApiError):
            c.users_info(user="U0ALICE")
    finally:
        stand_ins.stop(proc)


# ---------------------------------------------------------------- message metadata, paging, scopes
TAG = {"event_type": "mlops_bot_post", "event_payload": {"key": "deployed:prod:42"}}


def test_metadata_is_kept_and_returned_whole_only_when_asked(client):
    """Slack (api.slack.com/metadata/using, "Receive metadata with the Web API"): "If you receive a message by
    directly calling an API method and passing `include_all_metadata=true`, you will find a new `metadata`
    parameter in the message object with two keys: `event_type` and `event_payload`. If you do not pass
    `include_all_metadata=true`, you will receive the `event_type` field only." The same for
    conversations.replies (its `include_all_metadata` argument: "Return all metadata associated with this
    message")."""
    parent = client.chat_postMessage(channel="#meta", text="deploy v42 started", metadata=TAG)
    cid = parent["channel"]
    client.chat_postMessage(channel=cid, thread_ts=parent["ts"], text="finished", metadata=TAG)
    whole = client.conversations_history(channel=cid, include_all_metadata=True)["messages"][0]
    assert whole["metadata"] == TAG
    assert client.conversations_history(channel=cid)["messages"][0]["metadata"] == {"event_type": "mlops_bot_post"}
    thread = client.conversations_replies(channel=cid, ts=parent["ts"], include_all_metadata=True)["messages"]
    assert [m["metadata"] for m in thread] == [TAG, TAG]
    bare = client.conversations_replies(channel=cid, ts=parent["ts"])["messages"]
    assert [m["metadata"] for m in bare] == [{"event_type": "mlops_bot_post"}] * 2


def test_metadata_of_a_bad_shape(client):
    """Slack (docs.slack.dev/messaging/message-metadata): "Event types can contain letters, numbers, underscores,
    and hyphens, but not periods or other punctuation. Metadata with an invalid `event_type` returns an
    `invalid_metadata_schema` warning and is ignored." Metadata that is not JSON: `invalid_metadata_format`
    (one of chat.postMessage's documented errors)."""
    posted = client.chat_postMessage(
        channel="#meta-bad", text="x", metadata={"event_type": "mlops.bot", "event_payload": {"key": "k"}}
    )
    assert posted["ok"] and posted["warning"] == "invalid_metadata_schema" and "metadata" not in posted["message"]
    history = client.conversations_history(channel=posted["channel"], include_all_metadata=True)["messages"]
    assert "metadata" not in history[0]
    with pytest.raises(SlackApiError) as e:
        client.api_call("chat.postMessage", params={"channel": "#meta-bad", "text": "x", "metadata": "{not json"})
    assert e.value.response["error"] == "invalid_metadata_format"


def test_history_window_and_pages(client):
    """conversations.history's arguments (Slack's method page): `oldest` "Only messages after this Unix timestamp
    will be included in results", `latest` "Only messages before this Unix timestamp", `inclusive` "Include
    messages with oldest or latest timestamps in results. Ignored unless either timestamp is specified", and
    `cursor` "Paginate through collections of data by setting the cursor parameter to a next_cursor attribute
    returned by a previous request's response_metadata". Its errors include `invalid_ts_oldest` ("Value passed
    for oldest was invalid") and `channel_not_found`; its `channel` is the "Conversation ID to fetch history for"."""
    ts = [client.chat_postMessage(channel="#window", text=f"m{i}")["ts"] for i in range(5)]
    cid = client.chat_postMessage(channel="#window", text="last")["channel"]
    after = client.conversations_history(channel=cid, oldest=ts[1], latest=ts[4])["messages"]
    assert [m["text"] for m in after] == ["m3", "m2"]
    both = client.conversations_history(channel=cid, oldest=ts[1], latest=ts[4], inclusive=True)["messages"]
    assert [m["text"] for m in both] == ["m4", "m3", "m2", "m1"]
    seen, cursor = [], None
    while True:
        page = client.conversations_history(channel=cid, oldest=ts[0], limit=2, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["last", "m4", "m3", "m2", "m1"]
    for bad, error in (({"oldest": "yesterday"}, "invalid_ts_oldest"), ({"latest": "x"}, "invalid_ts_latest")):
        with pytest.raises(SlackApiError) as e:
            client.conversations_history(channel=cid, **bad)
        assert e.value.response["error"] == error
    with pytest.raises(SlackApiError) as e:
        client.conversations_history(channel="#window")  # a name, not an ID
    assert e.value.response["error"] == "channel_not_found"


def test_a_token_without_the_history_scope(tmp_path, receiver):
    """conversations.history's "Scopes" (Slack's method page), bot token: `channels:history` `groups:history`
    `im:history` `mpim:history` — "Bot token | Relevant *:history scope | Any conversation the relevant bot is
    a member of". chat.postMessage's: `chat:write`. Without it Slack answers `missing_scope` with the scope
    `needed` and those `provided` (as `{'ok': False, 'error': 'missing_scope', 'needed': ..., 'provided': ...}`)."""
    proc, base = _start(tmp_path, receiver, ["--scopes", "chat:write"])
    try:
        c = WebClient(token=TOKEN, base_url=base + "/api/")
        posted = c.chat_postMessage(channel="#scoped", text="hi", metadata=TAG)
        with pytest.raises(SlackApiError) as e:
            c.conversations_history(channel=posted["channel"], include_all_metadata=True)
        assert e.value.response.data == {
            "ok": False, "error": "missing_scope", "needed": "channels:history", "provided": "chat:write"
        }  # fmt: skip
        with pytest.raises(SlackApiError) as e:
            c.users_info(user="U0BOB")
        assert e.value.response["needed"] == "users:read"
    finally:
        stand_ins.stop(proc)


def test_an_in_channel_answer_keeps_its_metadata(client, slack):
    """A response URL takes `metadata` as chat.postMessage does (slackapi/python-slack-sdk#1362: "metadata argument
    must be supported when posting a message using response_url and incoming webhooks"): an in-channel answer is
    a channel message that carries it."""
    cid = client.chat_postMessage(channel="#answers", text="the request")["channel"]
    url = requests.get(slack["base"] + "/sandbox/response-url", params={"channel": cid, "user": "U0BOB"}).json()["url"]
    assert WebhookClient(url).send(text="@bob: approved", response_type="in_channel", metadata=TAG).status_code == 200
    newest = client.conversations_history(channel=cid, include_all_metadata=True)["messages"][0]
    assert newest["text"] == "@bob: approved" and newest["metadata"] == TAG
