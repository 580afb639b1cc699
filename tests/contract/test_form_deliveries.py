"""Every example delivery the bot subscribes to, sent as a repository hook whose content type is `form` (the REST
API's default for repository hooks: "application/x-www-form-urlencoded will send the JSON payload as a form
parameter called payload"), signed over the form body, is answered 2xx like its JSON twin."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from bot.web import create_app
from tests.contract.test_example_deliveries import addressed_to, example_cases


@pytest.fixture
def receiver(settings, redis_client, secrets):
    return create_app(settings, redis_client=redis_client).test_client()


@pytest.mark.parametrize(("event", "example"), list(example_cases()))
def test_receiver_answers_example_sent_as_form_2xx(receiver, signer, settings, event, example):
    old = (example.get("repository") or {}).get("full_name", "")
    data = addressed_to(example, old, settings.repos[0].name) if old else example
    body, headers = signer.github(event, urlencode({"payload": json.dumps(data)}).encode())
    r = receiver.post(
        "/webhooks/github", data=body, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert 200 <= r.status_code < 300, f"{r.status_code} {r.get_data(as_text=True)[:300]}"
