"""Slack posts once (issue #18): a post whose answer was lost after Slack stored it is not posted again.

chat.postMessage and response URLs take no idempotency key. The worker dies, or the HTTP answer never arrives,
after Slack has stored the message: the task runs again from its start (acks_late redelivery, a Transient
retry) and, before the fix, posted the same message a second time. Now every post carries its key (from the
bot's own record: the model, version, run, kind of post — never a delivery id) in Slack message metadata, and
a run again looks in the channel (or thread) from when it first tried, reusing the message it finds.

On the Slack stand-in (sandbox/slack) through slack_sdk and the bot's own gateway: the release train's steps
run on the shared fakes for GitHub, Databricks and MLflow (tests/reliability/test_crash_points.py's scenarios),
Slack is real HTTP; the one fault is an answer lost after Slack applied the call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from core.config import SlackSettings
from devstack.processes import free_port, is_ready, start_process
from devstack.sandboxes import SLACK_TOKEN, start_slack
from tests.conftest import ROOT
from tests.fakes import World
from tests.reliability.test_crash_points import SCENARIOS, prepared
from tests.unit.test_release import STAGING, released
from workers.errors import Transient
from workers.gateways import slack as slack_gateway
from workers.gateways.slack import Slack
from workers.release import slack_commands

CHANNEL = "#mlops-approvals"  # config.toml's `[slack] channel`: a name, as people write it


class LosingClient(WebClient):
    """slack_sdk's WebClient whose first answer to `lose` is lost after Slack applied the call (a reset connection)."""

    def __init__(self, lose: str, **kwargs):
        super().__init__(**kwargs)
        self.lose, self.lost = lose, False

    def api_call(self, api_method: str, **kwargs):  # type: ignore[override]
        response = super().api_call(api_method, **kwargs)
        if api_method == self.lose and not self.lost:
            self.lost = True
            raise ConnectionResetError(f"connection reset: the answer to {api_method} was lost")
        return response


@pytest.fixture(scope="module")
def slack_url(tmp_path_factory):
    service = start_slack(
        tmp_path_factory.mktemp("slack"), signing_secret="s", interactions_url="http://127.0.0.1:9/interactions"
    )
    yield service.url
    service.stop()


@pytest.fixture(scope="module")
def slack_without_history(tmp_path_factory):
    """The stand-in with a bot token of `chat:write` only (README's minimum before issue #18)."""
    port, workdir = free_port(), tmp_path_factory.mktemp("slack-scoped")
    argv = [sys.executable, "-m", "sandbox.slack", "--port", str(port), "--data", str(workdir / "data")]
    argv += ["--token", SLACK_TOKEN, "--scopes", "chat:write"]
    url = f"http://127.0.0.1:{port}"
    service = start_process(
        "slack", argv, workdir=workdir, url=url, cwd=ROOT, ready=lambda: is_ready(url + "/sandbox/health")
    )
    yield url
    service.stop()


def _on_slack(w: World, url: str, lose: str = "") -> World:
    """The world with the bot's real Slack gateway on the stand-in (its answer to `lose` lost once)."""
    client = LosingClient(lose, token=SLACK_TOKEN, base_url=url + "/api/")
    gateway = Slack(SlackSettings(channel=CHANNEL, base_url=url + "/api/"), client=client)
    return replace(w, deps=replace(w.deps, slack=gateway))


def _messages(url: str) -> list[dict]:
    """Every message of the approvals channel, thread replies included, as a person scrolling it sees them."""
    view = requests.get(url + "/sandbox/messages", params={"channel": CHANNEL}, timeout=10).json()
    return [m for top in view["messages"] for m in (top, *top.get("replies", [])) if not m.get("deleted")]


def _run_again_until_done(entry: Callable[[], object], attempts: int = 3) -> int:
    """Run the task's entry point again after each Transient, as Celery's retry does; returns the attempts."""
    for attempt in range(1, attempts + 1):
        try:
            entry()
            return attempt
        except Transient:
            continue
    raise AssertionError(f"never completed in {attempts} attempts")


@pytest.mark.parametrize(
    "scenario",
    [
        "validated → approval asked",  # the approval request, with its buttons
        "/reject → tags, comments, Slack",  # a reply in the request's thread
        "deploy finished → reported",  # a top-level post
        "/rollback prod",  # a top-level post keyed on the command
    ],
)
def test_a_post_whose_answer_was_lost_is_not_posted_twice(settings, redis_client, slack_url, scenario):
    requests.post(slack_url + "/sandbox/requests/reset", timeout=10)
    before = _messages(slack_url)
    w = _on_slack(prepared(settings, redis_client), slack_url)
    entry = SCENARIOS[scenario](w)  # the state before the step, made through Slack too
    w.deps.slack.client.lose = "chat.postMessage"  # type: ignore[union-attr]
    prepared_texts = [m["text"] for m in _messages(slack_url)]

    assert _run_again_until_done(entry) == 2  # the lost answer made the task run again
    new = [m for m in _messages(slack_url) if m not in before and m["text"] not in prepared_texts]
    texts = [m["text"] for m in new]
    assert len(texts) == len(set(texts)) and texts, f"posted twice: {texts}"
    counts = requests.get(slack_url + "/sandbox/requests", timeout=10).json()
    assert counts.get("conversations.history", 0) + counts.get("conversations.replies", 0) >= 1  # it looked


def test_an_answer_to_the_channel_whose_answer_was_lost_is_not_sent_twice(
    settings, redis_client, slack_url, monkeypatch
):
    """The Slack Approve button: the verdict goes to the channel through the click's response URL (no idempotency
    key either); its HTTP answer is lost, the task runs again and finds the answer in the request's channel."""
    w = _on_slack(prepared(settings, redis_client), slack_url)
    request = released(w)
    channel = request.slack_channel
    url = requests.get(
        slack_url + "/sandbox/response-url",
        params={"channel": channel, "user": "U0BOB", "message_ts": request.slack_ts},
        timeout=10,
    ).json()["url"]
    lost: list[str] = []

    class LosingWebhook(WebhookClient):
        def send(self, **kwargs):
            response = super().send(**kwargs)
            if not lost:
                lost.append(self.url)
                raise ConnectionResetError("connection reset: the response URL's answer was lost")
            return response

    monkeypatch.setattr(slack_gateway, "WebhookClient", LosingWebhook)

    def press() -> None:
        slack_commands.press_button(w.deps, "approve", f"{STAGING}@2", "U0BOB", url, channel)

    assert _run_again_until_done(press) == 2 and lost == [url]
    answers = [m["text"] for m in _messages(slack_url) if m["text"].startswith("@bob: approved")]
    assert len(answers) == 1, answers
    posts = requests.get(slack_url + "/sandbox/responses", timeout=10).json()["responses"]
    assert [p["effect"] for p in posts if p["url"] == url] == ["posted_in_channel"]  # the URL was used once


def test_without_a_history_scope_the_post_is_made_again_never_lost(settings, redis_client, slack_without_history):
    """What this does not protect: a token without `channels:history` cannot look (Slack: `missing_scope`), so
    the run again posts as before — the message is shown twice, never lost, and the task completes."""
    w = _on_slack(prepared(settings, redis_client), slack_without_history)
    entry = SCENARIOS["deploy finished → reported"](w)
    w.deps.slack.client.lose = "chat.postMessage"  # type: ignore[union-attr]
    assert _run_again_until_done(entry) == 2
    reports = [m["text"] for m in _messages(slack_without_history) if m["text"].startswith("✅ deploy of")]
    assert len(reports) == 2, reports
