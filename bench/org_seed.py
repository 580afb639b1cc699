"""The organisation bench/org.py measures: its names, its git template, the forge's seed, the bot's config, the
Unity Catalog models it watches and the storm of pushes that gives its branches their jobs.

An organisation of `repos` repositories (`acme/<team>-model-NNN`), each with `main` and `branches - 1` feature
branches, and `models` models spread over the repositories round robin, one Unity Catalog schema per team
(`dev|staging|prod.<team>.mNNN`). The bot signs in as a GitHub App (the forge's `[[apps]]`, its key made here);
the repositories have no webhook of their own: their events reach the bot through the App's webhook, as an
organisation that installed the App sees them.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core import events
from devstack import mlrepo
from devstack.mlrepo import git

OWNER = "acme"
TEAMS = ("ads", "fraud", "growth", "pricing", "risk", "search", "supply", "support")
PEOPLE = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol"}  # the bench's people: never counted
PERMISSIONS = '{ alice = "write", bob = "admin", carol = "read" }'
APP_ID, INSTALLATION_ID, APP_SLUG = 123, 456, "mlops-bot"
APP_KEY_ENV = "ORG_BENCH_GITHUB_APP_KEY"
DATABRICKS_TOKEN_ENV = "ORG_BENCH_DATABRICKS_TOKEN"
WEBHOOK_SECRET_ENV = "GITHUB_WEBHOOK_SECRET"
STORM_SENDERS = 8  # connections at once, as GitHub's delivery workers would open them
UC = "/api/2.0/mlflow/unity-catalog"


@dataclass(frozen=True)
class Org:
    repos: int
    branches: int  # in all, `main` included: branches // repos per repository
    models: int
    teams: int = len(TEAMS)

    @property
    def per_repo(self) -> int:
        return max(1, self.branches // self.repos)

    def half(self) -> Org:
        return Org(max(1, self.repos // 2), max(1, self.branches // 2), max(1, self.models // 2), self.teams)

    def repo_names(self) -> list[str]:
        return [f"{OWNER}/{TEAMS[i % self.teams]}-model-{i:03d}" for i in range(self.repos)]

    def branch_names(self) -> list[str]:
        return ["main"] + [f"feature/{k:03d}" for k in range(1, self.per_repo)]

    def model_specs(self) -> list[tuple[str, str, str]]:
        """(model, its repository, its team) for each model; model j lives in repository j mod repos."""
        out = []
        for j in range(self.models):
            i = j % self.repos
            team = TEAMS[i % self.teams]
            out.append((f"{team}_m{j:03d}", self.repo_names()[i], team))
        return out

    def describe(self) -> str:
        return (
            f"{self.repos} repositories, {self.repos * self.per_repo:,} branches ({self.per_repo} each, main "
            f"included), {self.models} models in {min(self.teams, self.repos)} schemas per catalog"
        )


def registry_name(stage: str, model: str, team: str) -> str:
    return f"{stage}.{team}.{model.rsplit('_', 1)[1]}"


# --- git: one template repository every seeded repository is imported from ------------------------------------


def template_repo(path: Path, org: Org) -> dict[str, str]:
    """The tiny ML repository (devstack/mlrepo.py) on `main`, and a feature branch of one commit each; returns
    branch → sha (the same in every repository imported from it)."""
    mlrepo.make_repo(path)
    for name in org.branch_names()[1:]:
        git(path, "checkout", "-q", "-B", name, "main")
        (path / "NOTES.md").write_text(f"work on {name}\n")
        git(path, "add", "-A")
        git(path, "commit", "-qm", f"work on {name}")
    git(path, "checkout", "-q", "main")
    refs = git(path, "for-each-ref", "--format=%(refname:lstrip=2) %(objectname)", "refs/heads/")
    return dict(line.split() for line in refs.splitlines())


# --- the GitHub App ---------------------------------------------------------------------------------------------


def app_key(folder: Path) -> str:
    """A new RSA key for the App: the public half in `folder`/app.pub.pem (the forge's seed), the private PEM
    returned (the bot's environment)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "app.pub.pem").write_bytes(public)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def forge_seed(org: Org, template: Path, web_url: str, secret: str) -> str:
    """The people, every repository of `org` imported from `template`, and the App installed on them with its
    webhook pointing at the bot."""
    users = "".join(f'[users."{login}"]\ntoken = "{token}"\n' for login, token in PEOPLE.items())
    repos = "".join(
        f'[[repos]]\nfull_name = "{name}"\ninit_from = "{template}"\npermissions = {PERMISSIONS}\n'
        for name in org.repo_names()
    )
    app = (
        f'[[apps]]\nid = {APP_ID}\nslug = "{APP_SLUG}"\ninstallation_id = {INSTALLATION_ID}\n'
        f'public_key_file = "app.pub.pem"\n[apps.webhook]\nurl = "{web_url}/webhooks/github"\nsecret = "{secret}"\n'
    )
    return users + repos + app


# --- the bot's config -------------------------------------------------------------------------------------------

WORKFLOWS = """\
[workflows.train]
environment = "dev"
run_on = ["command"]
datasets = ["toy", "full"]
default_dataset = "toy"
params_allowed = ["lr", "sleep", "fail"]
on_conflict = "supersede"
compute = "job_clusters"
[workflows.train.job_clusters.small]
node_type_id = "Standard_DS3_v2"
num_workers = 1
[[workflows.train.tasks]]
key = "prepare"
file = "steps/prepare.py"
parameters = ["--dataset", "{dataset}", "--branch", "{branch}"]
cluster = "small"
[[workflows.train.tasks]]
key = "train"
file = "steps/train.py"
parameters = ["--params", "{params}", "--commit", "{sha}"]
depends_on = ["prepare"]
cluster = "small"
[workflows.test]
run_on = ["pull_request", "command"]
[workflows.test.environments.default]
environment_version = "4"
[[workflows.test.tasks]]
key = "prepare"
file = "steps/prepare.py"
parameters = ["--dataset", "toy", "--branch", "{branch}"]
[workflows.validate]
run_on = ["model_version"]
[workflows.validate.environments.default]
environment_version = "4"
[[workflows.validate.tasks]]
key = "prepare"
file = "steps/prepare.py"
parameters = ["--dataset", "toy", "--branch", "{branch}"]
[workflows.deploy]
environment = "staging"
[workflows.deploy.environments.default]
environment_version = "4"
[[workflows.deploy.tasks]]
key = "prepare"
file = "steps/prepare.py"
parameters = ["--dataset", "toy", "--branch", "{branch}"]
"""


def config_text(org: Org, size: Org, urls: dict[str, str]) -> str:
    """The bot's config for the first `size.repos` repositories of `org` and their first `size.models` models: the
    App, Unity Catalog polled, an environment per workspace (`urls[env]`), every repository with the four
    workflows, every model with its dev → staging → prod train."""
    head = f"""\
[bot]
login = "{APP_SLUG}"
job_prefix = "mlops-bot"
public_url = "{urls["web"]}"
[github]
base_url = "{urls["forge"]}"
app_id = {APP_ID}
installation_id = {INSTALLATION_ID}
app_private_key_env = "{APP_KEY_ENV}"
seconds_between_writes = 0
[mlflow]
tracking_uri = "databricks"
registry_uri = "databricks-uc"
poll = true
[permissions]
train_full_users = ["bob"]
"""
    envs = "".join(
        f'[environments.{env}]\nhost = "{urls[env]}"\ntoken_env = "{DATABRICKS_TOKEN_ENV}"\n'
        f"retry_timeout_seconds = 60\n"
        for env in ("dev", "staging", "prod")
    )
    names = org.repo_names()[: size.repos]
    repos = "".join(
        f'[[repos]]\nname = "{name}"\ngit_url = "{urls["forge"]}/{name}.git"\ncode_source = "git"\n' for name in names
    )
    models = ""
    for model, repo, team in [spec for spec in org.model_specs() if spec[1] in names][: size.models]:
        models += f'[models.{model}]\nrepo = "{repo}"\ngates = ["score >= 0"]\n'
        for stage, trigger, env, workflow in (
            ("dev", "pull_request", "dev", "train"),
            ("staging", "merge", "staging", "train"),
            ("prod", "approval", "prod", "deploy"),
        ):
            models += (
                f'[[models.{model}.stages]]\nname = "{stage}"\ntrigger = "{trigger}"\nenvironment = "{env}"\n'
                f'registry_name = "{registry_name(stage, model, team)}"\nworkflow = "{workflow}"\n'
            )
            if stage == "staging":
                models += 'validate = "validate"\n'
    return head + envs + repos + WORKFLOWS + models


# --- Unity Catalog: the models the bot watches, each with a version -------------------------------------------


def seed_registry(workspace_url: str, token: str, org: Org) -> int:
    """Every model's staging registry with one READY version, through the workspace's Unity Catalog API (as the
    metastore admin); returns how many models it made."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, body: dict) -> dict:
        r = s.request(method, workspace_url + UC + path, json=body, timeout=30)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    made = 0
    for model, _repo, team in org.model_specs():
        name = registry_name("staging", model, team)
        call("POST", "/registered-models/create", {"name": name})
        v = call("POST", "/model-versions/create", {"name": name, "source": f"dbfs:/seed/{name}", "run_id": ""})
        call("POST", "/model-versions/finalize", {"name": name, "version": v["model_version"]["version"]})
        made += 1
    return made


# --- the storm of pushes ---------------------------------------------------------------------------------------


class _Sender:
    """One keep-alive connection per sending thread, like one of GitHub's delivery workers."""

    def __init__(self, url: str, secret: str):
        parts = urlsplit(url)
        self.host, self.port, self.secret = parts.hostname, parts.port, secret
        self.conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes, event: str = "push") -> int:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-Hub-Signature-256": events.github_signature(self.secret, body),
        }
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: one new one
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request("POST", "/webhooks/github", body, headers)
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def push_body(repo: str, branch: str, sha: str) -> bytes:
    """A branch created at `sha`, as the App's webhook delivers it."""
    owner, name = repo.split("/")
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": sha,
            "created": True,
            "deleted": False,
            "forced": False,
            "repository": {"full_name": repo, "name": name, "owner": {"login": owner}},
            "pusher": {"name": "alice"},
            "sender": {"login": "alice"},
            "installation": {"id": INSTALLATION_ID},
        }
    ).encode()


def push_storm(web_url: str, secret: str, pushes: list[tuple[str, str, str]]) -> tuple[float, dict[int, int]]:
    """Signed push deliveries, (repository, branch, sha) each, over STORM_SENDERS connections: the bot's branch-job
    sync for every branch, as a mass push (or the organisation's history) brings it. Returns (seconds, answers)."""
    local = threading.local()

    def send(body: bytes) -> int:
        if not hasattr(local, "sender"):
            local.sender = _Sender(web_url, secret)
        return local.sender.send(body)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(STORM_SENDERS) as pool:
        statuses = list(pool.map(send, [push_body(*p) for p in pushes]))
    answers: dict[int, int] = {}
    for status in statuses:
        answers[status] = answers.get(status, 0) + 1
    return time.monotonic() - started, answers


def ping(web_url: str, secret: str) -> int:
    """A signed `ping` delivery (GitHub sends one when a webhook is made): the receiver reads a changed config on it."""
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1, "installation": {"id": INSTALLATION_ID}})
    return _Sender(web_url, secret).send(body.encode(), event="ping")
