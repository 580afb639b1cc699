"""Every example delivery from @octokit/webhooks-examples for the events the bot subscribes to, signed with the test
secret, is answered 2xx by the receiver (a 4xx/5xx there is a bot bug)."""

from __future__ import annotations

import json

import pytest

from bot.web import create_app
from sandbox.forge.contract import CONTRACTS

EXAMPLES = json.loads((CONTRACTS / "webhook-examples.json").read_text())
# Known receiver deviations, each a bot bug to fix in handlers/ (strict: the xfail fails once it is fixed).
KNOWN_BUGS: dict[str, str] = {}


def example_cases():
    for event, examples in sorted(EXAMPLES.items()):
        for i, example in enumerate(examples):
            case_id = f"{event}.{example.get('action') or 'event'}.{i}"
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case_id])] if case_id in KNOWN_BUGS else []
            yield pytest.param(event, example, id=case_id, marks=marks)


def addressed_to(node, old: str, new: str):
    """The example with every `full_name` of its repository replaced (a fork's head repository keeps its own)."""
    if isinstance(node, list):
        return [addressed_to(v, old, new) for v in node]
    if not isinstance(node, dict):
        return node
    return {k: new if k == "full_name" and v == old else addressed_to(v, old, new) for k, v in node.items()}


@pytest.fixture
def receiver(settings, redis_client, secrets):
    return create_app(settings, redis_client=redis_client).test_client()


def test_examples_cover_every_event_the_bot_subscribes_to():
    assert {"push", "delete", "ping", "pull_request", "issue_comment", "check_run", "installation"} <= EXAMPLES.keys()


@pytest.mark.parametrize(("event", "example"), list(example_cases()))
def test_receiver_answers_example_delivery_2xx(receiver, signer, event, example):
    body, headers = signer.github(event, example)
    r = receiver.post("/webhooks/github", data=body, headers=headers)
    assert 200 <= r.status_code < 300, f"{r.status_code} {r.get_data(as_text=True)[:300]}"


@pytest.mark.parametrize(("event", "example"), list(example_cases()))
def test_receiver_answers_example_for_a_configured_repository_2xx(receiver, signer, settings, event, example):
    # the examples name Codertocat/Hello-World: addressed to a configured repository they reach the handlers
    old = (example.get("repository") or {}).get("full_name", "")
    body, headers = signer.github(event, addressed_to(example, old, settings.repos[0].name) if old else example)
    r = receiver.post("/webhooks/github", data=body, headers=headers)
    assert 200 <= r.status_code < 300, f"{r.status_code} {r.get_data(as_text=True)[:300]}"
