"""bench/org.py's units of work, each counted alone with beat paused (bench/org_stack.py `BeatPaused`):

  push      alice pushes a new commit to an existing feature branch of K repositories (git over HTTP: the forge
            sends the App's `push` delivery)
  pr        she opens a pull request from each; done when each PR's `test` run is followed to its end
  /train    T comments `/train` on those PRs, round robin, one every `gap` seconds; done when each command's run
            is followed to its end (its report, status or check run, and reaction)
  merge     bob merges M of them: the release train trains the merge commit in staging; done when the queue is
            settled

Each unit: the stand-ins' counters reset, the work done, the queue settled and the stand-ins quiet (bench/org_stack.py
`wait_quiet`), the counters read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from bench.harness import BenchError, say
from bench.org_seed import PEOPLE
from bench.org_stack import BeatPaused, Counters, wait_quiet
from core import keys
from devstack.mlrepo import git
from devstack.setups import Setup
from devstack.waiting import wait_until

SETTLE_SECONDS = 300


@dataclass
class Unit:
    """One kind of work, done `count` times, and what the bot asked of the stand-ins for it."""

    name: str
    count: int
    seconds: float
    github: dict[str, int] = field(default_factory=dict)
    databricks: dict[str, int] = field(default_factory=dict)

    def per_unit(self, api: str) -> float:
        return sum(getattr(self, api).values()) / self.count if self.count else float("nan")

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "seconds": round(self.seconds, 1),
            "github_per_unit": round(self.per_unit("github"), 2),
            "databricks_per_unit": round(self.per_unit("databricks"), 2),
            "github": dict(sorted(self.github.items())),
            "databricks": dict(sorted(self.databricks.items())),
        }


class Api:
    """The forge's REST API as one of the bench's people (their requests are not counted as the bot's)."""

    def __init__(self, base: str, login: str):
        self.base = base
        self.s = requests.Session()
        self.s.headers.update({"Authorization": f"token {PEOPLE[login]}", "Accept": "application/vnd.github+json"})

    def call(self, method: str, path: str, **kwargs):
        r = self.s.request(method, self.base + path, timeout=30, **kwargs)
        if r.status_code >= 400:
            raise BenchError(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None


def pr_records(r: redis.Redis, repo: str, pr: int) -> list[dict]:
    """The bot's run records of a PR (its own bookkeeping, read to know when the work is done, never to count)."""
    found = r.zrange(keys.pr_runs(repo, pr), 0, -1)
    return [json.loads(raw) for raw in r.mget(found) if raw] if found else []


class Work:
    def __init__(self, setup: Setup, counters: Counters, r: redis.Redis, repos: list[str], branch: str):
        self.setup, self.counters, self.r = setup, counters, r
        self.forge = setup.url("forge")
        self.alice, self.bob = Api(self.forge, "alice"), Api(self.forge, "bob")
        self.repos, self.branch = repos, branch
        self.checkouts: dict[str, Path] = {}
        self.prs: dict[str, int] = {}

    def counted(self, name: str, count: int, body) -> Unit:
        """Reset the counters, do `body`, wait for the queue to settle, read the counters."""
        self.counters.reset()
        started = time.monotonic()
        body()
        wait_quiet(self.r, self.counters, SETTLE_SECONDS, f"the bot to finish the {name} work")
        counts = self.counters.read()
        unit = Unit(name, count, time.monotonic() - started, counts["github"], counts["databricks"])
        say(
            f"  {name}: {count} in {unit.seconds:.0f} s — GitHub {unit.per_unit('github'):.2f}, "
            f"Databricks {unit.per_unit('databricks'):.2f} requests each"
        )
        return unit

    def prepare(self) -> None:
        """A clone of each repository's feature branch with one new commit, ready to push (outside the counts)."""
        for repo in self.repos:
            url = self.forge.replace("http://", f"http://alice:{PEOPLE['alice']}@") + f"/{repo}.git"
            path = self.setup.workdir / "checkouts" / repo
            git(self.setup.workdir, "clone", "-q", "--branch", self.branch, url, str(path))
            (path / "NOTES.md").write_text(f"more work on {self.branch} of {repo}\n")
            git(path, "add", "-A")
            git(path, "commit", "-qm", f"more work on {self.branch}")
            self.checkouts[repo] = path

    def push(self) -> None:
        for path in self.checkouts.values():
            git(path, "push", "-q", "origin", self.branch)

    def open_prs(self) -> None:
        for repo in self.repos:
            body = {"title": f"{self.branch} of {repo}", "body": "", "head": self.branch, "base": "main"}
            self.prs[repo] = self.alice.call("POST", f"/repos/{repo}/pulls", json=body)["number"]

        def tests_followed() -> bool:
            return all(
                any(rec.get("workflow") == "test" and rec.get("finished_at") for rec in pr_records(self.r, repo, n))
                for repo, n in self.prs.items()
            )

        wait_until(tests_followed, SETTLE_SECONDS, "each PR's `test` run to be followed to its end", every=1.0)

    def comment(self, total: int, gap: float) -> None:
        sent: list[tuple[str, int, int]] = []
        targets = list(self.prs.items())
        for i in range(total):
            repo, n = targets[i % len(targets)]
            c = self.alice.call("POST", f"/repos/{repo}/issues/{n}/comments", json={"body": "/train"})
            sent.append((repo, n, c["id"]))
            time.sleep(gap)

        def all_followed() -> bool:
            for repo, n, comment_id in sent:
                recs = [rec for rec in pr_records(self.r, repo, n) if rec.get("comment_id") == comment_id]
                if not recs or not all(rec.get("finished_at") for rec in recs):
                    return False
            return True

        wait_until(all_followed, SETTLE_SECONDS, "each `/train` run to be followed to its end", every=1.0)

    def merge(self, repos: list[str]) -> None:
        for repo in repos:
            self.bob.call("PUT", f"/repos/{repo}/pulls/{self.prs[repo]}/merge", json={"merge_method": "merge"})


def work_phase(setup: Setup, counters: Counters, r: redis.Redis, repos: list[str], opts) -> list[Unit]:
    """The units of work, counted one kind at a time with beat paused."""
    work = Work(setup, counters, r, repos, "feature/001")
    work.prepare()
    units = []
    with BeatPaused(setup, r, counters):
        units.append(work.counted("push", len(repos), work.push))
        units.append(work.counted("pull request", len(repos), work.open_prs))
        units.append(work.counted("/train", opts.trains, lambda: work.comment(opts.trains, opts.gap)))
        merged = repos[: opts.merges]
        units.append(work.counted("merge", len(merged), lambda: work.merge(merged)))
    return units
