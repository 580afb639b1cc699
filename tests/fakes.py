"""One shared set of in-memory fakes for the four gateways (and the scheduler), implementing the
protocols in `workers/gateways/__init__.py` — the pattern of gidgethub's `MockGitHubAPI`.

State stays the real `workers.core.state.State`, on the private Redis the tests start (`redis_client`).
Each fake records what a person would see (comments, statuses, Slack messages, tags).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from time import time
from typing import Any

from core.config import Settings
from workers.core.context import Deps
from workers.core.records import ApprovalRequest, Release
from workers.core.run_records import RunRecord, RunResult
from workers.core.state import State
from workers.errors import BotError, NotFound, Permanent, Transient
from workers.gateways import GitIdentity, JobRef, Listing, Pull, PullCommit, RunInfo, TaskOutput, TaskRun, Version
from workers.gateways.forge import DEPLOYMENT_KEY, MARKED, marker

_ids = itertools.count(1000)


# --- records as the bot saves them (JSON), the keys a test does not name filled in ------------------------
def run_record(**saved: Any) -> RunRecord:
    base = dict(run_id=1, job_id=1, job="", environment="dev", repo="acme/churn-model", branch="main", sha="")
    base.update(workflow="train", pr=None, requested_by="", parameters={}, token="", state="PENDING", started_at=0)
    return RunRecord.from_json({**base, **saved})


def run_result(**saved: Any) -> RunResult:
    """A finished run's result as run_result saves it; tasks as their saved dicts."""
    return RunResult.from_json({"run_id": 1, "job_id": 1, "life_cycle": "TERMINATED", "result": "SUCCESS", **saved})


def approval_request(**saved: Any) -> ApprovalRequest:
    base = dict(model="churn-model", name="churn-model-staging", version="1", status="pending", validation="pending")
    base.update(requested_at=0, repo="acme/churn-model", proven=False, claimed={}, mlflow_run_id="", approvals=[])
    return ApprovalRequest.from_json({**base, "needed": 1, **saved})


def release_record(**saved: Any) -> Release:
    stages: dict[str, dict] = {"dev": {}, "staging": {"dataset": ""}, "prod": {}}
    nested = {k: {**v, **saved.get(k, {})} for k, v in stages.items()}
    base = dict(model="churn-model", repo="acme/churn-model", pr=7, sha="", author="", merged_by="")
    return Release.from_json({**base, **saved, **nested})


def pull(
    number: int = 7,
    *,
    author: str = "alice",
    sha: str = "a" * 40,
    fork: bool = False,
    state: str = "open",
    ref: str = "feature/x",
    head_repo: str = "acme/churn-model",
) -> Pull:
    return Pull(
        number,
        state,
        author,
        sha,
        ref,
        "someone/churn-model" if fork else head_repo,
        "https://github.com/someone/churn-model.git" if fork else "",
        fork,
        f"https://github.com/pr/{number}",
    )


def commit(
    author: str = "alice",
    *,
    committer: str | None = None,
    message: str = "Change the model",
    email: str = "",
    name: str = "",
    sha: str = "",
) -> PullCommit:
    """A PR's commit: `author` (and `committer`, the author unless given) a GitHub login — a login ending `[bot]` a bot
    account — or "" with `email`/`name` for a git identity GitHub linked to no account."""

    def who(login: str) -> GitIdentity:
        if not login:
            return GitIdentity("", "", name, email)
        kind = "Bot" if login.endswith("[bot]") else "User"
        return GitIdentity(login, kind, name or login, email or f"{login}@users.noreply.github.com")

    return PullCommit(
        sha or f"{next(_ids):040x}", who(author), who(author if committer is None else committer), message
    )


@dataclass
class FakeForge:
    pulls: dict[int, Pull] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # login -> permission
    branches: set[str] = field(default_factory=set)
    comments: dict[int, dict] = field(default_factory=dict)  # id -> {"pr", "body"}
    statuses: list[dict] = field(default_factory=list)
    failures: dict[str, BotError] = field(default_factory=dict)  # method name -> what GitHub answers instead
    deployments: dict[int, dict] = field(default_factory=dict)  # id -> {"sha", "environment", "payload", "statuses"}
    teams: dict[str, set[str]] = field(default_factory=dict)  # "org/slug" -> logins
    deliveries: list[dict] = field(default_factory=list)  # the App webhook's attempts (hook-delivery-item)
    redelivered: list[int] = field(default_factory=list)  # attempt ids GitHub was asked to deliver again
    commits: dict[int, list[PullCommit]] = field(default_factory=dict)  # PR number -> its commits, oldest first
    files: dict[tuple[str, str], str] = field(default_factory=dict)  # (path, commit) -> the file's text
    parents: dict[str, list[str]] = field(default_factory=dict)  # commit -> its parents, first parent first
    app_subscribes: list[str] = field(default_factory=lambda: ["issue_comment", "pull_request", "push"])  # GET /app
    asked: list[str] = field(default_factory=list)  # the reads of the delivery passes, in order (304s marked so)

    def _answer(self, method: str) -> None:
        if method in self.failures:
            raise self.failures[method]

    def pull(self, repo: str, number: int) -> Pull:
        self._answer("pull")
        if number not in self.pulls:
            raise NotFound(f"GitHub said 404 to GET /repos/{repo}/pulls/{number}")
        return self.pulls[number]

    def open_pulls_with_head(self, repo: str, sha: str) -> list[Pull]:
        self._answer("open_pulls_with_head")
        return [p for p in self.pulls.values() if p.state == "open" and p.head_sha == sha]

    def pull_commits(self, repo: str, number: int) -> list[PullCommit]:
        """pulls/list-commits: "Lists a maximum of 250 commits for a pull request"."""
        self._answer("pull_commits")
        return self.commits.get(number, [])[:250]

    def permission(self, repo: str, user: str) -> str:
        self._answer("permission")
        return self.roles.get(user, "none")

    def file_at(self, repo: str, path: str, ref: str) -> str | None:
        self._answer("file_at")
        return self.files.get((path, ref))

    def commit_parents(self, repo: str, sha: str) -> list[str]:
        self._answer("commit_parents")
        return self.parents.get(sha, [])

    def in_team(self, org: str, team_slug: str, login: str) -> bool:
        self._answer("in_team")
        return login.lower() in {m.lower() for m in self.teams.get(f"{org}/{team_slug}", set())}

    def branch_names(self, repo: str) -> set[str]:
        self._answer("branch_names")
        return set(self.branches)

    def open_pull_numbers(self, repo: str) -> set[int]:
        self._answer("open_pull_numbers")
        return {n for n, p in self.pulls.items() if p.state == "open"}

    def comments_since(self, repo: str, since: str, page: int = 1, etag: str = "") -> Listing:
        """People's comments (entries with `user`, `created_at`, `updated_at`; `issue`: True on an issue) as
        GitHub lists them: updated at or after `since`, least recently updated first, 100 a page, with an ETag of the
        page's content; `304` (`changed` False) when `etag` is the page's."""
        self._answer("comments_since")
        items = self._comments_page(repo, since, page)
        tag = 'W/"' + hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:32] + '"'
        self.asked.append(f"comments_since {repo} {since} {page}" + (" 304" if etag == tag else ""))
        return Listing([], tag, changed=False) if etag == tag else Listing(items, tag)

    def app_events(self) -> list[str]:
        self._answer("app_events")
        self.asked.append("app_events")
        return list(self.app_subscribes)

    def _comments_page(self, repo: str, since: str, page: int) -> list[dict]:
        found = sorted(
            ((cid, c) for cid, c in self.comments.items() if "updated_at" in c and c["updated_at"] >= since),
            key=lambda item: (item[1]["updated_at"], item[0]),
        )[(page - 1) * 100 : page * 100]
        base = f"https://github.com/{repo}"
        return [
            {"id": cid, "body": c["body"], "user": {"login": c["user"]}, "created_at": c["created_at"],
             "updated_at": c["updated_at"], "issue_url": f"https://api.github.com/repos/{repo}/issues/{c['pr']}",
             "html_url": f"{base}/{'issues' if c.get('issue') else 'pull'}/{c['pr']}#issuecomment-{cid}"}
            for cid, c in found
        ]  # fmt: skip

    def app_deliveries(self, cursor: str = "", per_page: int = 100) -> tuple[list[dict], str]:
        """The App webhook's attempts as GitHub lists them: newest first, a page at a time, a cursor for the next."""
        self._answer("app_deliveries")
        listed, start = sorted(self.deliveries, key=lambda d: d["id"], reverse=True), int(cursor or 0)
        return listed[start : start + per_page], str(start + per_page) if start + per_page < len(listed) else ""

    def redeliver(self, delivery_id: int) -> None:
        self._answer("redeliver")
        self.redelivered.append(delivery_id)

    def marked_comments(self, repo: str, pr: int) -> dict[str, int]:
        """The bot's own comments on the PR (no `user`: people's carry theirs) by their first line's marker."""
        self._answer("marked_comments")
        found: dict[str, int] = {}
        for cid, c in self.comments.items():
            mark = MARKED.match(c["body"]) if c["pr"] == pr and "user" not in c else None
            if mark:
                found.setdefault(f"{mark[1]}:{mark[2]}", cid)
        return found

    def upsert_comment(
        self, repo: str, pr: int, kind: str, key: str, body: str, known_id: int | None = None, absent: bool = False
    ) -> int:
        """Edits `known_id` if it is there; else, unless `absent`, the one found by its marker; else posts: as the
        gateway, so a caller that says `absent` wrongly makes a second comment a test can count."""
        self._answer("upsert_comment")
        found = known_id if known_id in self.comments else None
        if found is None and not absent:
            found = self.marked_comments(repo, pr).get(f"{kind}:{key}")
        cid = found or next(_ids)
        self.comments[cid] = {"pr": pr, "body": f"{marker(kind, key)}\n{body}"}
        return cid

    def set_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str = "",
        check_run_id: int | None = None,
    ) -> int | None:  # fmt: skip
        """A commit status, as a token sets it (a GitHub App's check runs: tests/integration)."""
        self._answer("set_status")
        self.statuses.append({"sha": sha, "context": context, "state": state, "description": description})
        return None

    def create_deployment(self, repo: str, sha: str, environment: str, description: str, payload: dict) -> int:
        """One deployment per (sha, environment, payload key), like the gateway."""
        self._answer("create_deployment")
        for did, d in self.deployments.items():
            same = (d["sha"], d["environment"]) == (sha, environment)
            if same and d["payload"].get(DEPLOYMENT_KEY) == payload.get(DEPLOYMENT_KEY):
                return did
        did = next(_ids)
        self.deployments[did] = {
            "sha": sha,
            "environment": environment,
            "description": description,
            "payload": dict(payload),
            "statuses": [],
        }
        return did

    def set_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        description: str,
        log_url: str = "",
        environment_url: str = "",
    ) -> None:
        self._answer("set_deployment_status")
        if deployment_id not in self.deployments:
            raise NotFound(f"GitHub said 404 to POST /repos/{repo}/deployments/{deployment_id}/statuses")
        status = {"state": state, "description": description, "log_url": log_url, "environment_url": environment_url}
        self.deployments[deployment_id]["statuses"].append(status)

    # --- what a person sees -------------------------------------------------------------------------
    def deployment_states(self, environment: str) -> list[list[str]]:
        """The states each deployment to `environment` went through, oldest deployment first."""
        return [
            [s["state"] for s in d["statuses"]] for d in self.deployments.values() if d["environment"] == environment
        ]

    def comment(self, kind: str, key: str) -> str | None:
        """The body (without its marker) of the one comment for (kind, key), or None."""
        for c in self.comments.values():
            if marker(kind, key) in c["body"]:
                return c["body"].split("\n", 1)[1]
        return None


@dataclass
class FakeWorkspace:
    name: str = "dev"
    jobs: dict[int, dict] = field(default_factory=dict)  # job_id -> settings
    runs: dict[int, RunInfo] = field(default_factory=dict)
    outputs: dict[int, TaskOutput] = field(default_factory=dict)  # task run id -> output
    tokens: dict[str, int] = field(default_factory=dict)
    parameters: dict[int, dict] = field(default_factory=dict)  # run_id -> job parameters
    refuse_run_now: str = ""  # a message: run_now fails permanently, as Databricks refusing the request
    repos: dict[str, str] = field(default_factory=dict)  # path -> branch
    cancelled: list[int] = field(default_factory=list)
    lost_creates: int = 0  # creates whose answer is lost and that the SDK sends again: each leaves one job more
    created_time: dict[int, int] = field(default_factory=dict)  # job_id -> epoch ms (the janitor's age rule)

    def find_job(self, name: str) -> JobRef | None:
        return next(iter(self.find_jobs(name)), None)

    def find_jobs(self, name: str) -> list[JobRef]:
        return sorted(
            (JobRef(jid, name, dict(s.get("tags", {}))) for jid, s in self.jobs.items() if s["name"] == name),
            key=lambda job: job.job_id,
        )

    def create_job(self, settings: dict) -> int:
        if self.lost_creates:  # jobs/create has no idempotency token: the re-sent create makes a second job
            self.lost_creates -= 1
            self.jobs[next(_ids)] = settings
        job_id = next(_ids)
        self.jobs[job_id] = settings
        return job_id

    def reset_job(self, job_id: int, settings: dict) -> None:
        self.jobs[job_id] = settings

    def delete_job(self, job_id: int) -> bool:
        return self.jobs.pop(job_id, None) is not None

    def managed_jobs(self, prefix: str, tag: str) -> list[JobRef]:
        return [
            JobRef(jid, s["name"], dict(s.get("tags", {})), self.created_time.get(jid, 0))
            for jid, s in self.jobs.items()
            if s["name"].startswith(prefix + "/") and tag in s.get("tags", {})
        ]

    def run_now(self, job_id: int, parameters: dict[str, str], token: str) -> int:
        if self.refuse_run_now:
            raise Permanent(f"Databricks ({self.name}) refused to start job {job_id}: {self.refuse_run_now}")
        if job_id not in self.jobs:  # Databricks: 400 INVALID_PARAMETER_VALUE "Job … does not exist."
            raise NotFound(f"Databricks ({self.name}): cannot start job {job_id}: Job {job_id} does not exist.")
        if token not in self.tokens:
            run_id = self.tokens[token] = next(_ids)
            page, now_ms = f"https://dbc/run/{run_id}", int(time() * 1000)
            self.runs[run_id] = RunInfo(run_id, job_id, "RUNNING", run_page_url=page, start_time=now_ms)
            self.parameters[run_id] = parameters
        return self.tokens[token]

    def active_runs(self, job_id: int) -> list[int]:
        if job_id not in self.jobs:
            raise NotFound(f"job {job_id} does not exist")
        return [r.run_id for r in self.runs.values() if r.job_id == job_id and not r.terminal]

    def cancel_run(self, run_id: int) -> None:
        self.cancelled.append(run_id)
        self.runs[run_id] = replace(self.runs[run_id], life_cycle="TERMINATED", result_state="CANCELED")

    def get_run(self, run_id: int) -> RunInfo:
        if run_id not in self.runs:
            raise NotFound(f"run {run_id} does not exist")
        return self.runs[run_id]

    def task_output(self, task_run_id: int) -> TaskOutput:
        if task_run_id not in self.outputs:
            raise NotFound(f"task run {task_run_id} does not exist")
        return self.outputs[task_run_id]

    def checkout_repo(self, path: str, url: str, provider: str, branch: str) -> int:
        self.repos[path] = branch
        return 1

    def delete_repo(self, path: str) -> bool:
        return self.repos.pop(path, None) is not None

    # --- driving the fake -----------------------------------------------------------------------------
    def finish(
        self, run_id: int, result: str = "SUCCESS", output: str = "", notebook_result: str | None = None
    ) -> None:
        """The run ends with `result`; its job's last task printed `output` (the only task shown) — or, given
        `notebook_result`, it is a notebook that exited with that value (Databricks returns no logs for notebooks)."""
        kind = "spark_python_task" if notebook_result is None else "notebook_task"
        job_tasks = self.jobs.get(self.runs[run_id].job_id, {}).get("tasks") or [{"task_key": "main"}]
        task = TaskRun(job_tasks[-1]["task_key"], run_id + 1, result, 1_000, 61_000, kind)  # the job's last task
        said = TaskOutput(logs=output) if notebook_result is None else TaskOutput(result=notebook_result)
        self.outputs[task.run_id] = said
        start = self.runs[run_id].start_time or int(time() * 1000)
        self.runs[run_id] = replace(
            self.runs[run_id],
            life_cycle="TERMINATED",
            result_state=result,
            start_time=start,
            end_time=start + 60_000,  # a one-minute run, started when run_now started it
            tasks=(task,),
        )

    def ran(self, run_id: int, output: str = "", result: str = "SUCCESS") -> None:
        """A run that started a moment ago (not through `run_now` here) and ended, its one task having said
        `output`."""
        self.runs[run_id] = RunInfo(run_id, 0, "RUNNING", start_time=int(time() * 1000) - 1_000)
        self.finish(run_id, result, output)


@dataclass
class FakeRegistry:
    versions_: dict[tuple[str, str], Version] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # MLflow run id -> metrics
    run_tags_: dict[str, dict[str, str]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, alias) -> version
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # tags the bot wrote
    stages: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)  # the polling calls, to count them
    writes: list[tuple[str, str]] = field(default_factory=list)  # (what, registry name) of every write
    page: int = 50  # versions per search call, as the real gateway's PAGE
    uc: bool = False  # a Unity Catalog registry: no stages
    creators: bool = False  # the registry records who created a version (Databricks' do, an MLflow server does not)
    # Unity Catalog's listing: model -> `updated_at`, changed as the sandbox changes it (an alias set: yes; a new
    # version: no -- sandbox/workspace/api/uc_models.py); `listing_error`, when set, is what listing raises
    updated: dict[str, int] = field(default_factory=dict)
    listing_error: Exception | None = None

    def add_version(
        self,
        model: str,
        version: str,
        run_id: str = "",
        metrics: dict | None = None,
        created_by: str = "",
        **tags: str,
    ) -> Version:
        """A version created now by `created_by` (the principal whose token made the call, as Databricks records)."""
        v = Version(model, version, run_id, dict(tags), created=int(time() * 1000), created_by=created_by)
        self.versions_[(model, version)] = v
        if run_id:
            self.metrics[run_id] = dict(metrics or {})
        return v

    def set_status(self, model: str, version: str, status: str, created: int = 0) -> None:
        """PENDING_REGISTRATION while its files upload, READY, or FAILED_REGISTRATION."""
        self.versions_[(model, version)] = replace(self.versions_[(model, version)], status=status, created=created)

    def version_url(self, model: str, version: str) -> str:
        return f"http://mlflow/#/models/{model}/versions/{version}"

    def recent_versions(self, model: str, newer_than: int, max_pages: int = 5) -> list[Version]:
        newest = sorted((v for (m, _), v in self.versions_.items() if m == model), key=lambda v: -v.number)
        pages = 0
        for start in range(0, max(len(newest), 1), self.page):
            pages += 1
            page = newest[start : start + self.page]
            if pages == max_pages or any(v.number <= newer_than for v in page):
                break
        self.calls += ["search"] * pages
        return [v for v in newest[: pages * self.page] if v.number > newer_than]

    def model_aliases(self, model: str) -> dict[str, str]:
        self.calls.append("get_registered_model")
        return {a: v for (m, a), v in self.aliases.items() if m == model}

    def listed_models(self, schema: str) -> dict[str, int]:
        """Every model of `schema` that exists (a version, an alias or a listed stamp), by lower-cased name."""
        self.calls.append(f"list {schema}")
        if self.listing_error is not None:
            raise self.listing_error
        names = {m for m, _ in self.versions_} | {m for m, _ in self.aliases} | set(self.updated)
        return {m.lower(): self.updated.get(m, 1) for m in names if m.lower().startswith(schema.lower() + ".")}

    def touch(self, model: str) -> None:
        """An update of the registered model itself (its comment, owner, aliases): a new `updated_at`."""
        self.updated[model] = self.updated.get(model, 1) + 1

    def copy_version(self, src_name: str, version: str, dst_name: str) -> Version:
        self.writes.append(("copy", dst_name))
        source = f"models:/{src_name}/{version}"
        for v in self.versions_.values():
            if v.model == dst_name and v.source == source:
                return v
        src = self.versions_[(src_name, str(version))]
        number = 1 + max((v.number for v in self.versions_.values() if v.model == dst_name), default=0)
        copy = replace(src, model=dst_name, version=str(number), source=source, aliases=())
        self.versions_[(dst_name, copy.version)] = copy
        return copy

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.metrics.get(run_id, {}))

    def run_url(self, run_id: str) -> str:
        return f"http://mlflow/#/experiments/1/runs/{run_id}" if run_id in self.metrics else ""

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.run_tags_.get(run_id, {}))

    def version(self, model: str, version: str) -> Version:
        if (model, str(version)) not in self.versions_:
            raise NotFound(f"RESOURCE_DOES_NOT_EXIST: {model} version {version}")
        v = self.versions_[(model, str(version))]
        return replace(v, aliases=tuple(a for (m, a), ver in self.aliases.items() if m == model and ver == v.version))

    def versions(self, model: str) -> list[Version]:
        return [self.version(m, v) for (m, v) in self.versions_ if m == model]

    def champion(self, model: str, alias: str) -> dict | None:
        version = self.aliases.get((model, alias))
        if version is None:
            return None
        v = self.versions_[(model, version)]
        return {"model": model, "version": version, "metrics": self.run_metrics(v.run_id) if v.run_id else {}}

    def by_alias(self, model: str, alias: str) -> Version | None:
        version = self.aliases.get((model, alias))
        return None if version is None else self.version(model, version)

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        self.writes.append(("tags", model))
        self.tags.setdefault((model, str(version)), {}).update({k: str(v) for k, v in tags.items()})

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.writes.append(("alias", model))
        self.aliases[(model, alias)] = str(version)
        self.touch(model)

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        if self.uc:
            raise Permanent(f"Unity Catalog has no stages: {model} version {version} cannot move to {stage!r}")
        self.stages[(model, str(version))] = stage


@dataclass
class FakeSlack:
    """Slack as the bot sees it: every message it posted, with the key its metadata carries (`key`), found again
    as conversations.history/replies with `include_all_metadata` find them (`find_post`). An in-channel answer to
    a response URL lands in `answers_channel` (the channel of the button or command); an ephemeral one is the
    user's alone: nothing finds it."""

    posts: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    closed: list[dict] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)
    channel: str = "C0APPROVALS"  # `[slack] channel`
    answers_channel: str = "C0APPROVALS"

    def request_approval(self, model: str, version: str, text: str, key: str = "") -> tuple[str, str]:
        ts = str(next(_ids))
        self.requests.append({"model": model, "version": version, "text": text, "ts": ts, "key": key, "at": time()})
        return self.channel, ts

    def post(self, text: str, thread_ts: str = "", channel: str = "", key: str = "") -> tuple[str, str]:
        ts = str(next(_ids))
        self.posts.append(
            {
                "text": text,
                "thread_ts": thread_ts,
                "channel": channel or self.channel,
                "ts": ts,
                "key": key,
                "at": time(),
            }
        )
        return channel or self.channel, ts

    def find_post(
        self, key: str, channel: str = "", thread_ts: str = "", oldest: float = 0.0
    ) -> tuple[str, str] | None:
        channel = channel or self.channel
        messages = [
            *({**r, "channel": self.channel, "thread_ts": ""} for r in self.requests),
            *self.posts,
            *({**r, "channel": self.answers_channel, "thread_ts": ""} for r in self.responses if r["in_channel"]),
        ]
        for m in messages:
            if (m["key"], m["channel"], m["thread_ts"]) == (key, channel, thread_ts) and key and m["at"] >= oldest:
                return channel, m["ts"]
        return None

    def close_request(self, channel: str, ts: str, text: str) -> None:
        self.closed.append({"channel": channel, "ts": ts, "text": text})

    def respond(self, response_url: str, text: str, in_channel: bool = False, key: str = "") -> None:
        ts = str(next(_ids))
        self.responses.append(
            {"url": response_url, "text": text, "in_channel": in_channel, "key": key, "ts": ts, "at": time()}
        )


@dataclass
class FakeScheduler:
    follows: list[tuple[str, int, int]] = field(default_factory=list)

    def follow(self, environment: str, run_id: int, polls: int = 0, countdown: float | None = None) -> None:
        self.follows.append((environment, run_id, polls))


@dataclass
class World:
    """Deps on fakes, plus the fakes themselves to drive and inspect."""

    deps: Deps
    forge: FakeForge
    workspace: FakeWorkspace
    registry: FakeRegistry
    slack: FakeSlack
    scheduler: FakeScheduler


def world(settings: Settings, state: State, *, github: bool = True, slack: bool = True) -> World:
    forge, registry, chat, scheduler = FakeForge(), FakeRegistry(), FakeSlack(), FakeScheduler()
    workspaces = {name: FakeWorkspace(name) for name in settings.environments}
    deps = Deps(
        settings,
        state,
        workspaces.__getitem__,
        forge if github else None,
        chat if slack else None,
        lambda: registry,
        scheduler,
        "" if github else "GitHub: GITHUB_TOKEN is not set",
    )
    return World(deps, forge, workspaces["dev"], registry, chat, scheduler)


# --- crash points (tests/reliability/test_crash_points.py): the same fakes, with a write that fails ----------
WRITES = {
    "forge": {"upsert_comment", "set_status", "create_deployment", "set_deployment_status"},
    "workspace": {"create_job", "reset_job", "delete_job", "run_now", "cancel_run", "checkout_repo", "delete_repo"},
    "registry": {"copy_version", "set_tags", "set_alias", "transition_stage"},
    "slack": {"request_approval", "post", "close_request", "respond"},  # find_post reads
    "scheduler": {"follow"},
}


class Killed(BaseException):
    """The worker was SIGKILLed: nothing after this point ran (a BaseException: `except Exception` misses it)."""


@dataclass
class Faults:
    """Which write fails and how; what was written (applied), in order."""

    at: int = 0  # the write that fails, 1-based (0: none)
    kind: str = ""  # "kill": before it is applied; "lost": applied, then the answer is lost
    registry_down: int = 0  # MLflow is down: this many registry calls fail before it answers again
    on: str = ""  # given (e.g. "registry.copy_version"), `at` counts only the writes of that name
    count: int = 0
    registry_calls: int = 0
    applied: list[tuple[str, tuple]] = field(default_factory=list)
    counted: int = 0  # the writes `at` counts

    def write(self, what: str, args: tuple, apply: Callable[[], object]) -> object:
        self.count += 1
        self.counted += not self.on or what == self.on
        hit = self.counted == self.at and (not self.on or what == self.on)
        if hit and self.kind == "kill":
            raise Killed(f"SIGKILL before write {self.count} ({what})")
        result = apply()
        self.applied.append((what, args))
        if hit and self.kind == "lost":
            raise Transient(f"connection reset: the answer to write {self.count} ({what}) was lost")
        return result

    def armed(self, at: int, kind: str, on: str = "") -> None:
        """From now on (the scenario prepared), the `at`-th write (of the name `on`) fails as `kind`."""
        self.at, self.kind, self.on, self.count, self.counted = at, kind, on, 0, 0
        self.applied.clear()

    def registry_call(self, name: str) -> None:
        self.registry_calls += 1
        if self.registry_calls <= self.registry_down:
            raise Transient(f"MLflow is down: {name} timed out (call {self.registry_calls})")


class Faulty:
    """A fake whose writes go through `Faults` (reads pass; the registry's reads fail while MLflow is down)."""

    def __init__(self, target: object, kind: str, faults: Faults):
        self._target, self._kind, self._faults = target, kind, faults

    def __getattr__(self, name: str):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        writes, faults, kind = WRITES[self._kind], self._faults, self._kind

        def call(*args, **kwargs):
            if kind == "registry":
                faults.registry_call(name)
            if name in writes:
                return faults.write(f"{kind}.{name}", args, lambda: attr(*args, **kwargs))
            return attr(*args, **kwargs)

        return call


def faulty(w: World, faults: Faults) -> World:
    """The same fakes, seen by the product code through `Faulty`."""
    d = w.deps
    spaces = {env: Faulty(d.workspaces(env), "workspace", faults) for env in d.settings.environments}
    registry = Faulty(w.registry, "registry", faults)
    deps = Deps(
        d.settings,
        d.state,
        spaces.__getitem__,
        Faulty(w.forge, "forge", faults),  # type: ignore[arg-type]
        Faulty(w.slack, "slack", faults),  # type: ignore[arg-type]
        lambda: registry,  # type: ignore[arg-type,return-value]
        Faulty(w.scheduler, "scheduler", faults),  # type: ignore[arg-type]
    )
    return replace(w, deps=deps)
