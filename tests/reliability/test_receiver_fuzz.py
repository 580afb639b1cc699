"""Bad input at the receiver gets 4xx, always: a fuzz loop over every webhook endpoint.

Every delivery here is correctly signed, so it passes the signature check and reaches parsing,
normalisation and the handlers: real payloads (../shared/fixtures, tests/data) with fields
replaced by values of the wrong type or removed, deep nesting, non-UTF-8 bytes, odd content
types and headers, a chunked body over the limit. Every answer must be 2xx or 4xx within
`BOUND_S`, never the receiver's last line (`status: malformed`, a handler that raised), and a
valid delivery must still be queued afterwards. The figure goes to test-artifacts/fuzz-receiver.json.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import secrets
import time
import uuid
from collections import defaultdict
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.web import create_app
from core import events
from tests.conftest import DATA, ROOT, SECRETS, fixtures_dir

pytestmark = pytest.mark.usefixtures("secrets")

BOUND_S = 2.0
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))  # `make chaos` may run more
ENDPOINTS = ("github", "mlflow", "databricks", "slack/commands", "slack/interactions")
FIGURE: dict[str, dict] = defaultdict(lambda: {"inputs": 0, "5xx": 0, "malformed": 0, "slowest_ms": 0.0})
FUZZ = hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODEL = "churn-model"  # configured in config.toml, so model events reach the handlers' later steps
GITHUB_EVENTS = ["push", "delete", "pull_request", "issue_comment", "check_run", "ping", "installation", ""]


# --- signing any bytes the way each source does (secrets from conftest, never hard-coded) ------


def signed(endpoint: str, body: bytes, content_type: str | None = None) -> dict:
    ts = str(int(time.time()))
    delivery = str(uuid.uuid4())
    if endpoint == "github":
        headers = {
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body),
        }
    elif endpoint == "mlflow":
        signature = events.mlflow_signature(SECRETS["MLFLOW_WEBHOOK_SECRET"], delivery, ts, body)
        headers = {"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": ts, "X-MLflow-Signature": signature}
    elif endpoint == "databricks":
        headers = {"X-Databricks-Signature": events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], body)}
    else:
        signature = events.slack_signature(SECRETS["SLACK_SIGNING_SECRET"], ts, body)
        headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    form = endpoint.startswith("slack/")
    headers["Content-Type"] = content_type or ("application/x-www-form-urlencoded" if form else "application/json")
    return headers


def encode(endpoint: str, doc) -> bytes:
    """A document as its source sends it: JSON, a form, or a form whose `payload` is JSON."""
    if endpoint == "slack/commands":
        return urlencode(doc if isinstance(doc, list) else [("payload", json.dumps(doc))]).encode()
    if endpoint == "slack/interactions":
        return urlencode({"payload": json.dumps(doc)}).encode()
    return json.dumps(doc).encode()


# --- seeds: real payloads ------------------------------------------------------------------


def _github_seeds() -> list[tuple[str, dict]]:
    seeds = []
    for path in sorted(DATA.glob("*.json")):
        name = next((e for e in GITHUB_EVENTS if e and path.stem.startswith(e)), None)
        if name:
            seeds.append((name, json.loads(path.read_text())))
    for path in sorted((fixtures_dir() / "github").glob("*.payload.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc.get("repository"), dict):
            doc["repository"]["full_name"] = "acme/churn-model"  # configured: the handlers read further
        seeds.append((path.name.split("__")[0], doc))
    return seeds


def _mlflow_seeds() -> list[dict]:
    seeds = [json.loads((DATA / "mlflow_model_version_created.json").read_text())]
    for path in sorted((fixtures_dir() / "mlflow").glob("*.json")):
        seeds.append(json.loads(json.loads(path.read_text())["raw_body"]))
    for seed in seeds:
        if isinstance(seed.get("data"), dict) and "name" in seed["data"]:
            seed["data"]["name"] = MODEL
    return seeds


def _databricks_seeds() -> list[dict]:
    paths = [DATA / "databricks_model_version_created.json"]
    paths += sorted((fixtures_dir() / "databricks").glob("registry_webhook__*.payload.json"))
    return [json.loads(p.read_text()) | {"model_name": MODEL} for p in paths]


def _fresh(doc: dict) -> dict:
    return doc | {"event_timestamp": int(time.time() * 1000)} if "event_timestamp" in doc else doc


def _slack_command_seed() -> list[tuple[str, str]]:
    raw = (fixtures_dir() / "slack" / "slash_command.bolt-python-tests.form-urlencoded.txt").read_text().strip()
    return parse_qsl(raw) + [("text", "approve churn-model 3")]


def _slack_interaction_seeds() -> list[dict]:
    fixture = fixtures_dir() / "slack" / "block_actions.bolt-python-tests.payload.json"
    return [json.loads((DATA / "slack_button.json").read_text()), json.loads(fixture.read_text())]


SEEDS = {
    "github": _github_seeds(),
    "mlflow": _mlflow_seeds(),
    "databricks": _databricks_seeds(),
    "slack/interactions": _slack_interaction_seeds(),
}

# --- strategies ----------------------------------------------------------------------------

ODD_STRINGS = ["", "x" * 100_000, "\u202e\U0001f600\x00\ud7ff", "refs/heads/", "0" * 40, "/train toy", "{{x}}", "NaN"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(ODD_STRINGS)
)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw, seed):
    """`seed` with one to three fields replaced by junk or removed (the root may become junk too)."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        if not path:
            doc = draw(junk) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(junk)
    return doc


@st.composite
def command_forms(draw):
    form = [(k, v) for k, v in _slack_command_seed() if draw(st.integers(0, 7))]  # drop some fields
    extra = st.tuples(st.sampled_from(["command", "user_id", "text", "trigger_id", "response_url", "x"]), st.text())
    form += draw(st.lists(extra, max_size=3))  # add or duplicate fields, unicode values
    form += draw(st.lists(st.tuples(st.just("text"), st.sampled_from(ODD_STRINGS)), max_size=1))
    return form


# --- the app and the assertions --------------------------------------------------------------


@pytest.fixture
def client(settings, redis_client):
    app = create_app(settings, redis_client=redis_client)
    return app.test_client()


@pytest.fixture(scope="module", autouse=True)
def figure():
    yield FIGURE
    out = ROOT / "test-artifacts" / "fuzz-receiver.json"
    out.parent.mkdir(exist_ok=True)
    report = {"bound_s": BOUND_S, "endpoints": {e: FIGURE[e] for e in ENDPOINTS if e in FIGURE}}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\nreceiver fuzz:", json.dumps(report["endpoints"]))


def deliver(client, endpoint: str, body: bytes, headers, **kwargs):
    """Post one input; it must be answered 2xx/4xx within the bound and never by the last line."""
    started = time.perf_counter()
    r = client.post(f"/webhooks/{endpoint}", data=None if "input_stream" in kwargs else body, headers=headers, **kwargs)
    elapsed = time.perf_counter() - started
    row = FIGURE[endpoint]
    row["inputs"] += 1
    row["5xx"] += r.status_code >= 500
    answer = r.get_json(silent=True) or {}
    row["malformed"] += answer.get("status") == "malformed"
    row["slowest_ms"] = max(row["slowest_ms"], round(elapsed * 1000, 1))
    assert r.status_code < 500, (endpoint, r.status_code, body[:300])
    assert answer.get("status") != "malformed", (endpoint, body[:300])  # a handler raised on this shape
    assert 200 <= r.status_code < 300 or 400 <= r.status_code < 500, r.status_code
    assert elapsed < BOUND_S, (endpoint, elapsed)
    return r


def still_answers(client, endpoint: str) -> None:
    """After the fuzzing, a valid delivery is still handled (queued or deliberately ignored)."""
    # a delivery the fuzz cannot have sent already: the receiver dedupes on signed content (a new commit, version)
    version = str(random.randrange(10_000, 10**9))
    push = json.loads((DATA / "push_new_branch.json").read_text()) | {"after": secrets.token_hex(20)}
    mlflow = SEEDS["mlflow"][0] | {"data": SEEDS["mlflow"][0]["data"] | {"version": version}}
    valid = {
        "github": ("push", push),
        "mlflow": (None, mlflow),
        "databricks": (None, _fresh(SEEDS["databricks"][0]) | {"version": version}),
        "slack/commands": (None, _slack_command_seed()),
        "slack/interactions": (None, SEEDS["slack/interactions"][0] | {"trigger_id": str(uuid.uuid4())}),
    }
    event, doc = valid[endpoint]
    body = encode(endpoint, doc)
    headers = signed(endpoint, body) | ({"X-GitHub-Event": event} if event else {})
    r = client.post(f"/webhooks/{endpoint}", data=body, headers=headers)
    assert r.status_code in (200, 202), (endpoint, r.status_code, r.get_json(silent=True))
    if not endpoint.startswith("slack/"):
        assert r.json["status"] == "queued", r.json


# --- the fuzz loops, one per endpoint ---------------------------------------------------------


def test_github_fuzz(client):
    @FUZZ
    @given(st.data())
    def run(data):
        name, seed = data.draw(st.sampled_from(SEEDS["github"]))
        doc = data.draw(mutated(seed))
        event = data.draw(st.sampled_from([name, name, *GITHUB_EVENTS]))
        as_form = data.draw(st.integers(0, 4)) == 0  # repository hooks may send `payload=<json>`
        body = urlencode({"payload": json.dumps(doc)}).encode() if as_form else json.dumps(doc).encode()
        headers = signed("github", body, "application/x-www-form-urlencoded" if as_form else None)
        deliver(client, "github", body, headers | {"X-GitHub-Event": event})

    run()
    still_answers(client, "github")


@pytest.mark.parametrize("endpoint", ["mlflow", "databricks", "slack/interactions"])
def test_json_endpoint_fuzz(client, endpoint):
    @FUZZ
    @given(st.data())
    def run(data):
        seed = _fresh(data.draw(st.sampled_from(SEEDS[endpoint])))
        body = encode(endpoint, data.draw(mutated(seed)))
        deliver(client, endpoint, body, signed(endpoint, body))

    run()
    still_answers(client, endpoint)


def test_slack_command_fuzz(client):
    @FUZZ
    @given(command_forms())
    def run(form):
        body = urlencode(form).encode()
        deliver(client, "slack/commands", body, signed("slack/commands", body))

    run()
    still_answers(client, "slack/commands")


# --- the shapes a strategy rarely finds: one table, every endpoint ---------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
ODD_BODIES = {
    "empty": b"",
    "deep list": DEEP,
    "deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "not utf-8": b'{"action": "\xff\xfe\xfa"}',
    "utf-16": json.dumps({"action": "created"}).encode("utf-16"),
    "not json": b"{not json",
    "json array": b"[1, 2, 3]",
    "json string": b'"hello"',
    "huge number": b'{"event": 1' + b"0" * 5000 + b"}",
    "form of junk": b"payload=%ff%fe&&&==&payload",
    "form deep payload": b"payload=" + b"%5B" * 100_000,
    "nul bytes": b"\x00" * 64,
}
CONTENT_TYPES = [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "\xff/?"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name", ODD_BODIES)
def test_odd_bodies_are_4xx(client, endpoint, name):
    for content_type in CONTENT_TYPES:
        body = ODD_BODIES[name]
        deliver(client, endpoint, body, signed(endpoint, body, content_type) | {"X-GitHub-Event": "push"})


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_odd_headers_are_4xx(client, endpoint):
    body = encode(endpoint, {"event": "MODEL_VERSION_CREATED", "type": "block_actions", "entity": "model_version"})
    headers = signed(endpoint, body)
    cases = [
        {"X-GitHub-Event": "no_such_event"},
        {"X-GitHub-Event": "x" * 60_000, "X-Padding": "y" * 60_000},  # oversized headers
        {"X-GitHub-Event": "push\u00e9\u00ff"},  # latin-1 header values
    ]
    for extra in cases:
        deliver(client, endpoint, body, headers | extra)
    missing = {k: v for k, v in headers.items() if "Event" not in k and "Delivery" not in k and "Timestamp" not in k}
    deliver(client, endpoint, body, missing)
    duplicated = [*headers.items(), *headers.items(), ("X-GitHub-Event", "push"), ("X-GitHub-Event", "ping")]
    deliver(client, endpoint, body, duplicated)
    for name in [k for k in headers if "Signature" in k or "Timestamp" in k]:
        deliver(client, endpoint, body, headers | {name: headers[name] + "9" * 500})
    still_answers(client, endpoint)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_chunked_body_over_the_limit_is_413(client, settings, endpoint):
    """No Content-Length, `Transfer-Encoding: chunked`, as gunicorn hands it on (input_terminated)."""
    body = b"x" * (settings.bot.max_body_bytes + 10)
    headers = signed(endpoint, body) | {"Transfer-Encoding": "chunked", "X-GitHub-Event": "push"}
    overrides = {"wsgi.input_terminated": True}
    r = deliver(client, endpoint, body, headers, input_stream=io.BytesIO(body), environ_overrides=overrides)
    assert r.status_code == 413, r.get_json(silent=True)
