"""The dashboard against a real private Redis: auth, every section, escaping, and a real browser."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request

import pytest

from bot.dashboard import COOKIE, split_job_name
from bot.web import create_app
from tests.conftest import ROOT
from tests.support import browser

TOKEN = "dash-test-token-5f1c"
NOW = time.time()
XSS = "<script>alert('pwned')</script>"
DASHBOARD_ENV = ("MLOPS_BOT_DASHBOARD_TOKEN", "MLOPS_BOT_DASHBOARD_USER", "MLOPS_BOT_DASHBOARD_PASSWORD")


def seed(r) -> None:
    """What the receiver and the workers leave in Redis after a busy hour."""
    deliveries = [  # oldest first: LPUSH makes the list newest first
        {
            "source": "github",
            "event": "push",
            "delivery_id": "d-101",
            "at": NOW - 3000,
            "outcome": "queued",
            "tasks": ["sync_branch_jobs"],
        },
        {
            "source": "github",
            "event": "issue_comment.created",
            "delivery_id": "d-102",
            "at": NOW - 1200,
            "outcome": "queued",
            "tasks": ["run_command"],
        },
        {
            "source": "github",
            "event": "issue_comment.created",
            "delivery_id": "d-102",
            "at": NOW - 1190,
            "outcome": "duplicate",
        },
        {"source": "github", "outcome": "refused", "reason": "signature does not match", "at": NOW - 600},
        {
            "source": "github",
            "event": "pull_request.labeled",
            "delivery_id": "d-103",
            "at": NOW - 30,
            "outcome": "ignored",
            "reason": f"label {XSS} is not ours",
        },
    ]
    for d in deliveries:
        r.lpush("mlops-bot:deliveries:recent", json.dumps(d))
    r.lpush("mlops-bot:deliveries:recent", "not json at all")  # a bad record is skipped, not a 500

    runs = [
        {
            "run_id": 9001,
            "job_id": 501,
            "job": "mlops-bot/acme/churn/feature/xgb/train",
            "environment": "dev",
            "repo": "acme/churn",
            "branch": "feature/xgb",
            "sha": "4f2a9c1e0b7d33aa",
            "workflow": "train",
            "pr": 42,
            "requested_by": "alice",
            "parameters": {"dataset": "toy"},
            "state": "RUNNING",
            "started_at": NOW - 185,
        },
        {
            "run_id": 9000,
            "job_id": 501,
            "job": "mlops-bot/acme/churn/feature/xgb/train",
            "environment": "dev",
            "repo": "acme/churn",
            "branch": "feature/xgb",
            "sha": "1b2c3d4e5f60718",
            "workflow": "train",
            "pr": 42,
            "requested_by": "alice",
            "parameters": {},
            "state": "CANCELED",
            "started_at": NOW - 900,
            "finished_at": NOW - 190,
            "superseded_by": 9001,
        },
        {
            "run_id": 8800,
            "job_id": 502,
            "job": "mlops-bot/acme/churn/main/test",
            "environment": "dev",
            "repo": "acme/churn",
            "branch": "main",
            "sha": "77aa88bb99cc",
            "workflow": "test",
            "pr": None,
            "requested_by": "push",
            "parameters": {},
            "state": "SUCCESS",
            "started_at": NOW - 2400,
            "finished_at": NOW - 2100,
            "result": {
                "result": "SUCCESS",
                "run_page_url": "https://adb-1.azuredatabricks.net/jobs/502/runs/8800",
                "duration_s": 300,
                "tasks": [
                    {"key": "unit", "result": "SUCCESS", "duration_s": 120},
                    {"key": "integration", "result": "SUCCESS", "duration_s": 170},
                ],
            },
        },
        {
            "run_id": 8700,
            "job_id": 503,
            "job": "mlops-bot/acme/fraud/fix/<b>leak</b>/evaluate",
            "environment": "staging",
            "repo": "acme/fraud",
            "branch": f"fix/{XSS}",
            "sha": "deadbeefcafe",
            "workflow": "evaluate",
            "pr": 7,
            "requested_by": "bob",
            "parameters": {},
            "state": "FAILED",
            "started_at": NOW - 3300,
            "finished_at": NOW - 3000,
            "result": {
                "result": "FAILED",
                "run_page_url": "javascript:alert(1)",
                "duration_s": 298,
                "tasks": [{"key": "evaluate", "result": "FAILED", "duration_s": 290}],
            },
        },
    ]
    for run in runs:
        key = f"mlops-bot:run:{run['environment']}:{run['run_id']}"
        r.set(key, json.dumps(run))
        r.zadd("mlops-bot:runs:recent", {key: run["started_at"]})
    r.zadd("mlops-bot:runs:recent", {"mlops-bot:run:dev:expired": NOW - 10})  # index outlived its record

    jobs = {
        "dev:mlops-bot/acme/churn/feature/xgb/train": {
            "job_id": 501,
            "fingerprint": "a1b2c3d4e5f6a7b8",
            "updated_at": NOW - 200,
        },
        "dev:mlops-bot/acme/churn/main/test": {"job_id": 502, "fingerprint": "0f9e8d7c6b5a"},
        "staging:mlops-bot/acme/fraud/fix/leak/evaluate": None,
    }  # member without its cache entry
    for member, record in jobs.items():
        r.sadd("mlops-bot:jobs", member)
        if record:
            r.set(f"mlops-bot:job:{member}", json.dumps(record))

    approvals = [
        {
            "model": "churn-classifier",
            "version": "12",
            "status": "pending",
            "requested_at": NOW - 400,
            "repo": "acme/churn",
            "pr": 42,
            "validation": "passed",
            "approvals": [{"by": "alice", "at": NOW - 300, "source": "slack"}],
        },
        {
            "model": "fraud-detector",
            "version": "3",
            "status": "rejected",
            "requested_at": NOW - 5000,
            "validation": "failed",
            "approvals": [],
            "rejected_by": "carol",
            "reason": "AUC dropped by 4 points",
        },
        {
            "model": "churn-classifier",
            "version": "11",
            "status": "approved",
            "requested_at": NOW - 86400,
            "repo": "acme/churn",
            "pr": 40,
            "validation": "passed",
            "approvals": [
                {"by": "alice", "at": NOW - 86000, "source": "github"},
                {"by": "bob", "at": NOW - 85000, "source": "slack"},
            ],
        },
    ]
    for a in approvals:
        key = f"mlops-bot:approval:{a['model']}:{a['version']}"
        r.set(key, json.dumps(a))
        r.zadd("mlops-bot:approvals", {key: a["requested_at"]})

    audit = [
        {
            "at": NOW - 86400,
            "decision": "requested",
            "model": "churn-classifier",
            "version": "11",
            "actor": "mlops-bot",
            "source": "mlflow",
        },
        {
            "at": NOW - 85000,
            "decision": "promoted",
            "model": "churn-classifier",
            "version": "11",
            "actor": "bob",
            "source": "slack",
            "repo": "acme/churn",
            "pr": 40,
        },
        {
            "at": NOW - 5000,
            "decision": "rejected",
            "model": "fraud-detector",
            "version": "3",
            "actor": "carol",
            "source": "github",
            "reason": "AUC dropped by 4 points",
        },
        {
            "at": NOW - 60,
            "decision": "refused",
            "model": "churn-classifier",
            "version": "12",
            "actor": "mallory",
            "source": "slack",
            "reason": f"mallory may not approve {XSS}",
        },
    ]
    for entry in audit:
        r.xadd("mlops-bot:audit", {"entry": json.dumps(entry)})


@pytest.fixture
def no_dashboard_env(monkeypatch):
    for name in DASHBOARD_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def app_with(settings, redis_client, no_dashboard_env):
    """create_app with the given dashboard environment, Redis seeded."""
    seed(redis_client)

    def make(**env):
        for name, value in env.items():
            no_dashboard_env.setenv(name, value)
        return create_app(settings, redis_client=redis_client).test_client()

    return make


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- auth --------------------------------------------------------------------------------------
def test_unconfigured_dashboard_is_404_with_an_explanation(app_with):
    r = app_with().get("/")
    assert r.status_code == 404
    assert "MLOPS_BOT_DASHBOARD_TOKEN" in r.text and r.text.count("\n") == 1


def test_user_without_password_does_not_turn_it_on(app_with):
    assert app_with(MLOPS_BOT_DASHBOARD_USER="ops").get("/").status_code == 404


@pytest.mark.parametrize(
    "headers, query",
    [
        ({}, ""),
        ({"Authorization": "Bearer wrong-token"}, ""),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
        ({}, "?token=wrong-token"),
        ({"Cookie": f"{COOKIE}={TOKEN}"}, ""),  # the cookie holds a derived value, never the token itself
    ],
)
def test_without_the_right_token_is_401(app_with, headers, query):
    r = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN).get("/" + query, headers=headers)
    assert r.status_code == 401
    assert 'Bearer realm="mlops-bot dashboard"' in r.headers.getlist("WWW-Authenticate")
    assert TOKEN not in r.text and "<script>" not in r.text


def test_bearer_token_is_200(app_with):
    r = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN).get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert r.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_query_token_sets_a_strict_httponly_cookie_and_drops_the_token_from_the_url(app_with):
    client = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN)
    r = client.get(f"/?token={TOKEN}&refresh=0")
    assert r.status_code == 303 and r.headers["Location"] == "/?refresh=0"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    followed = client.get(r.headers["Location"])  # the refreshes ride on the cookie
    assert followed.status_code == 200 and "Deliveries" in followed.text
    assert client.get(f"/?token={TOKEN}", follow_redirects=True).status_code == 200


def test_basic_auth_is_200_and_wrong_password_is_401(app_with):
    client = app_with(MLOPS_BOT_DASHBOARD_USER="ops", MLOPS_BOT_DASHBOARD_PASSWORD="s3cret pass")
    assert client.get("/", headers=basic("ops", "s3cret pass")).status_code == 200
    for user, password in [("ops", "nope"), ("root", "s3cret pass")]:
        r = client.get("/", headers=basic(user, password))
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="mlops-bot dashboard"')
    assert client.get("/").status_code == 401


def test_auth_is_read_when_the_app_is_built_not_at_import(app_with, no_dashboard_env):
    off = app_with()
    on = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN)
    assert off.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    assert on.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# --- content -----------------------------------------------------------------------------------
@pytest.fixture
def page(app_with) -> str:
    r = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN).get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    return r.text


def test_every_section_is_on_the_overview(page):
    for anchor in ('id="runs"', 'id="approvals"', 'id="deliveries"', 'id="jobs"', 'id="audit"'):
        assert anchor in page


def test_values_from_outside_are_escaped_and_unsafe_links_are_not_rendered(page):
    assert "<script>" not in page and "<b>leak</b>" not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page  # the branch, reason, audit entry
    assert "javascript:" not in page
    assert 'href="https://adb-1.azuredatabricks.net/jobs/502/runs/8800"' in page


def test_deliveries_show_outcome_reason_and_source(page):
    deliveries = page.split('id="deliveries"')[1].split("</section>")[0]
    for text in (
        "accepted",
        "ignored",
        "duplicate",
        "refused",
        "signature does not match",
        "run_command",
        "sync_branch_jobs",
        "issue_comment.created",
        "d-103",
    ):
        assert text in deliveries
    assert deliveries.index("d-103") < deliveries.index("d-101")  # newest first


def test_runs_are_grouped_by_repo_and_branch_with_the_active_one_first(page):
    runs = page.split('id="runs"')[1].split("</section>")[0]
    assert runs.index("feature/xgb") < runs.index("main") < runs.index("acme/fraud")
    assert "badge run" in runs and "RUNNING" in runs and "so far" in runs
    assert "superseded by 9001" in runs and "alice" in runs and "#42" in runs
    assert "5 min 00 s" in runs  # the finished run's duration
    assert "integration · 2 min 50 s" in runs


def test_jobs_by_repo_and_branch_even_without_a_cache_entry(page):
    jobs = page.split('id="jobs"')[1].split("</section>")[0]
    for text in ("acme/churn", "feature/xgb", "train", "501", "a1b2c3d4e5f6", "acme/fraud", "fix/leak", "not cached"):
        assert text in jobs


def test_approvals_split_pending_from_decided(page):
    approvals = page.split('id="approvals"')[1].split("</section>")[0]
    pending, decided = approvals.split("Decided (")
    assert "churn-classifier" in pending and "v12" in pending and "alice" in pending
    assert "fraud-detector" in decided and "carol" in decided and "AUC dropped" in decided and "v11" in decided


def test_audit_trail_is_newest_first(page):
    audit = page.split('id="audit"')[1].split("</section>")[0]
    assert audit.index("refused") < audit.index("rejected") < audit.index("promoted") < audit.index("requested")
    assert "mallory" in audit


def test_refresh_every_5_seconds_unless_turned_off(app_with):
    client = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert '<meta http-equiv="refresh" content="5">' in client.get("/", headers=auth).text
    assert 'http-equiv="refresh"' not in client.get("/?refresh=0", headers=auth).text


def test_empty_redis_shows_empty_sections(settings, redis_client, no_dashboard_env):
    no_dashboard_env.setenv("MLOPS_BOT_DASHBOARD_TOKEN", TOKEN)
    r = (
        create_app(settings, redis_client=redis_client)
        .test_client()
        .get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    )
    assert r.status_code == 200
    for text in (
        "No runs recorded yet",
        "No approval requests yet",
        "No deliveries recorded yet",
        "No branch jobs yet",
        "No audit entries yet",
    ):
        assert text in r.text


def test_a_key_of_the_wrong_type_breaks_only_its_section(app_with, redis_client):
    redis_client.delete("mlops-bot:audit")
    redis_client.set("mlops-bot:audit", "oops")
    r = app_with(MLOPS_BOT_DASHBOARD_TOKEN=TOKEN).get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert "Audit trail this key holds an unexpected Redis type" in r.text and "churn-classifier" in r.text


def test_unreachable_redis_is_a_503_page(settings, no_dashboard_env):
    import redis

    no_dashboard_env.setenv("MLOPS_BOT_DASHBOARD_TOKEN", TOKEN)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    r = create_app(settings, redis_client=dead).test_client().get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 503 and "Redis is unreachable" in r.text


def test_the_dashboard_imports_no_worker_code_and_no_sdk():
    code = (
        "import sys, bot.dashboard; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'workers', 'handlers', 'databricks', 'github', 'mlflow', 'slack_sdk', 'celery'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mlops-bot/acme/churn/main/train", ("acme/churn", "main", "train")),
        ("mlops-bot/acme/churn/feature/a/b/deploy", ("acme/churn", "feature/a/b", "deploy")),
        ("someone-elses-job", ("", "", "someone-elses-job")),
    ],
)
def test_job_names_split_into_repo_branch_workflow(name, expected):
    assert split_job_name(name, "mlops-bot") == expected


# --- a real browser against the real web process ------------------------------------------------


@pytest.fixture
def web(redis_server, redis_client, tmp_path, no_dashboard_env):
    from devstack.bot import start_web

    seed(redis_client)
    service = start_web(
        tmp_path / "web",
        {
            "REDIS_URL": redis_server.url,
            "MLOPS_BOT_CONFIG": str(ROOT / "config.toml"),
            "MLOPS_BOT_DASHBOARD_TOKEN": TOKEN,
        },
    )
    yield service
    service.stop()


@pytest.mark.skipif(not browser.available(), reason="chromium is not installed: `apt-get install -y chromium`")
def test_headless_chromium_renders_the_dashboard(web, tmp_path):
    with urllib.request.urlopen(web.url + "/healthz", timeout=5) as r:
        assert r.status == 200
    url = f"{web.url}/?token={TOKEN}&refresh=0"
    dom = browser.chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for text in (
        'id="runs"',
        'id="approvals"',
        'id="deliveries"',
        'id="jobs"',
        'id="audit"',
        "feature/xgb",
        "churn-classifier",
        "signature does not match",
        "mallory",
    ):
        assert text in html, text
    assert "<script>" not in html and "Unauthorized" not in html
    assert 'http-equiv="refresh"' not in html

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    shot.unlink(missing_ok=True)
    taken = browser.chromium([f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
    # The app never logs the token: gunicorn's access line of the one ?token= request is its only trace.
    log = (tmp_path / "web" / "web.log").read_text()
    assert [line for line in log.splitlines() if TOKEN in line and f'"GET /?token={TOKEN}&' not in line] == []
