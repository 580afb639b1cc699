"""What an organisation costs the bot's APIs at idle and per unit of work, and how that grows with the organisation.

    make bench     # or: .venv/bin/python bench/org.py [--repos 200] [--branches 5000] [--models 200] [--keep]

One sandbox forge (real git; the bot signed in as a GitHub App installed on every repository) and one sandbox
workspace per environment (dev, staging, prod; Unity Catalog served by dev's), seeded with an organisation —
`--repos` repositories with `--branches` branches in all and `--models` models in one schema per team
(`staging.<team>.mNNN`, each with a version), polled (`[mlflow] poll = true`) — and the bot's web, worker and beat
on them (bench/org_seed.py, bench/org_stack.py).

  half    the bot configured with half the organisation; a storm of signed push deliveries, one per branch (as
          a mass push, or the organisation's history, brings them): the bot's branch-job sync makes what it
          makes; the queue settles (beat's messages that expired behind the storm are sent again) and
          `--warmup` seconds pass, so the window sees beat's steady passes;
  idle    a real window of `--idle-seconds` (default 120: the slowest sub-hourly beat entry's period, so each
          entry's passes are counted whole), the bot's web, worker and beat untouched: the stand-ins' counts
          × 3600 / window = requests an hour. Not time compressed: a shorter real window, scaled to the hour;
  janitor beat paused, one janitor pass sent onto the queue (beat runs it hourly), counted alone;
  full    the same three steps with the whole organisation (the config grows; the other half's branches pushed);
  work    beat paused (the bench sends its `send-due-tasks` every 2 s), each kind of work counted alone
          (bench/org_work.py): pushes, pull requests opened, `/train`, merges;
  jobs    saved jobs in the workspaces after each size and after the work; active branches = the branches the
          work pushed and the default branches it merged into.

Prints, per API and endpoint, requests an hour at idle for both sizes and their ratio, per unit of work, the
janitor's and the polls' costs, saved jobs per active branch, and the figures issue #20 judges against their
targets, next to a baseline (`--baseline`, default the newest docs/performance/org-baseline-*.json). Writes
bench/results/org.json; `--save-baseline FILE` also writes the figures there, with the commit measured.
Exit status 0 even when a target is missed (a measurement); 2 when the run failed (logs kept); 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root instead of bench/: `copy` looks for Jython's `org.python.core`, and this file would answer.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack and the bot, from the repository root

import argparse  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import redis  # noqa: E402
import requests  # noqa: E402

from bench import harness  # noqa: E402
from bench.harness import BenchError, say  # noqa: E402
from bench.org_report import default_baseline, figures_of, print_report, save_baseline  # noqa: E402
from bench.org_seed import (  # noqa: E402
    Org,
    app_key,
    config_text,
    forge_seed,
    ping,
    push_storm,
    seed_registry,
    template_repo,
)
from bench.org_stack import (  # noqa: E402
    ENVIRONMENTS,
    QUIET_SECONDS,
    REGISTRY_WORKSPACE,
    SECRET,
    BeatPaused,
    Counters,
    check_answers,
    fire,
    start_stack,
    wait_quiet,
)
from bench.org_work import work_phase  # noqa: E402
from core.reloading import CHECK_EVERY_SECONDS  # noqa: E402
from core.vocabulary import BEAT_SCHEDULE, CLEAN_UP_STALE_JOBS, POLL_REGISTRY  # noqa: E402
from devstack import ROOT  # noqa: E402
from devstack.sandboxes import WORKSPACE_TOKEN  # noqa: E402

STORM_SETTLE_SECONDS = 1800
JANITOR_SETTLE_SECONDS = 900


def saved_jobs(setup, prefix: str = "mlops-bot/") -> dict[str, int]:
    """The bot's jobs in each workspace (jobs/list pages of 100; never while the counters run)."""
    out = {}
    for env in ENVIRONMENTS:
        url, token, n = setup.url(f"workspace-{env}"), "", 0
        while True:
            params = {"limit": 100, **({"page_token": token} if token else {})}
            page = requests.get(
                url + "/api/2.2/jobs/list",
                params=params,
                headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}"},
                timeout=60,
            ).json()
            n += sum(1 for j in page.get("jobs", []) if j["settings"]["name"].startswith(prefix))
            token = page.get("next_page_token")
            if not token:
                break
        out[env] = n
    return out


def measure_size(
    setup, counters: Counters, r: redis.Redis, org: Org, size: Org, pushes, urls, opts, first_passes_done: float
) -> dict:
    """Configure the bot for `size` (a part of `org`), push its new branches, then count an idle window and a
    janitor pass."""
    say(f"\n== {size.describe()}")
    setup.config_path.write_text(config_text(org, size, urls))
    # every process reads the file again within CHECK_EVERY_SECONDS of its next use; the worker (one registry poll,
    # outside the counts) and the receiver (pings) are made to before the storm: threads that run while another
    # re-reads the file still see the old one, and ignore or refuse the new repositories' pushes ("not configured")
    time.sleep(2 * CHECK_EVERY_SECONDS)
    fire(r, POLL_REGISTRY)
    for _ in range(8):  # the receiver too: each of its threads' first delivery after the change
        ping(urls["web"], SECRET)
    wait_quiet(r, counters, STORM_SETTLE_SECONDS, "the worker to read the new config")
    storm_s, answers = push_storm(urls["web"], SECRET, pushes)
    check_answers(answers, "the push storm")
    settle_s = wait_quiet(r, counters, STORM_SETTLE_SECONDS, "the bot to sync every pushed branch's jobs")
    say(f"  {len(pushes):,} push deliveries in {storm_s:.0f} s; the bot settled {settle_s:.0f} s later")
    jobs = saved_jobs(setup)
    say(f"  saved jobs: {sum(jobs.values()):,} ({', '.join(f'{k} {v:,}' for k, v in jobs.items())})")
    # beat catches up on the passes whose messages expired behind the storm, then is steady; and no window holds the
    # worker's first passes (a first GitHub call mints the hour's installation token, and the like: scaled to the
    # hour, one would count as 30)
    time.sleep(max(opts.warmup, first_passes_done - time.monotonic()))

    say(f"  idle: a real window of {opts.idle_seconds:.0f} s (web, worker and beat as they are)")
    counters.reset()
    started = time.monotonic()
    time.sleep(opts.idle_seconds)
    idle = counters.read()
    window = time.monotonic() - started

    with BeatPaused(setup, r, counters):
        counters.reset()
        started = time.monotonic()
        fire(r, CLEAN_UP_STALE_JOBS)
        time.sleep(1)
        wait_quiet(r, counters, JANITOR_SETTLE_SECONDS, "the janitor pass")
        janitor = counters.read()
        janitor_s = time.monotonic() - started
    say(f"  janitor pass: {janitor_s:.0f} s (until the stand-ins answered nothing for {QUIET_SECONDS:.0f} s)")
    return {
        "org": {
            "repos": size.repos,
            "branches": size.repos * size.per_repo,
            "models": size.models,
            "pushes": len(pushes),
        },
        "storm_s": round(storm_s, 1),
        "settle_s": round(settle_s, 1),
        "saved_jobs": jobs,
        "idle_window_s": round(window, 1),
        "idle": idle,
        "janitor_s": round(janitor_s, 1),
        "janitor": janitor,
    }


def pushes_for(org: Org, repos: list[str], shas: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(repo, branch, shas[branch]) for repo in repos for branch in org.branch_names()]


def body(run: harness.Run, opts) -> None:
    started, commit = time.monotonic(), commit_id()  # the code that runs, before anyone edits the tree meanwhile
    org = Org(opts.repos, opts.branches, opts.models)
    half = org.half()
    say(f"organisation: {org.describe()}; the bot as a GitHub App, Unity Catalog polled")
    shas = template_repo(run.workdir / "template", org)
    pem = app_key(run.workdir)
    first = half if opts.half else org
    urls: dict[str, str] = {}

    def seed(web_url: str) -> str:
        return forge_seed(org, run.workdir / "template", web_url, SECRET)

    def config(started_urls: dict[str, str]) -> str:
        urls.update(started_urls)
        return config_text(org, first, urls)

    setup = start_stack(run, seed, config, pem, opts.workers)
    say(f"stack up in {time.monotonic() - started:.0f} s")
    # beat runs each entry first one period after it starts
    first_passes_done = time.monotonic() + max(p for _, p in BEAT_SCHEDULE.values() if p < 3600) + 10
    made = seed_registry(setup.url(f"workspace-{REGISTRY_WORKSPACE}"), WORKSPACE_TOKEN, org)
    say(f"Unity Catalog: {made} models, a version each")
    r = redis.Redis.from_url(setup.url("redis"))
    counters = Counters(setup)
    sizes = {}
    names = org.repo_names()
    if opts.half:
        sizes["half"] = measure_size(
            setup, counters, r, org, half, pushes_for(org, names[: half.repos], shas), urls, opts, first_passes_done
        )
    rest = names[half.repos :] if opts.half else names
    sizes["full"] = measure_size(
        setup, counters, r, org, org, pushes_for(org, rest, shas), urls, opts, first_passes_done
    )

    say("\n== work (beat paused; each kind counted alone)")
    step = max(1, org.repos // opts.work_repos)
    work_repos = names[::step][: opts.work_repos]
    units = work_phase(setup, counters, r, work_repos, opts)
    jobs_after = saved_jobs(setup)
    active = len(work_repos) + min(opts.merges, len(work_repos))
    elapsed = time.monotonic() - started
    results = {
        "commit": commit,
        "org": {"repos": org.repos, "branches": org.repos * org.per_repo, "models": org.models},
        "idle_seconds": opts.idle_seconds,
        "sizes": sizes,
        "units": {u.name: u.to_json() for u in units},
        "saved_jobs_after_work": jobs_after,
        "active_branches": active,
        "elapsed_s": round(elapsed, 1),
    }
    results["figures"] = figures_of(results)
    baseline = Path(opts.baseline) if opts.baseline else default_baseline()
    print_report(results, baseline)
    harness.write_results("org", results)
    if opts.save_baseline:
        save_baseline(Path(opts.save_baseline), results)


def commit_id() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return head.stdout.strip() + ("+changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repos", type=int, default=200)
    p.add_argument("--branches", type=int, default=5000, help="in all, each repository's main included")
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--idle-seconds", type=float, default=120.0, help="the real idle window per size")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds between the storm settled and the idle window")
    p.add_argument("--no-half", dest="half", action="store_false", help="measure the whole organisation only")
    p.add_argument("--work-repos", type=int, default=8, help="repositories that push, open a PR and /train")
    p.add_argument("--trains", type=int, default=16, help="`/train` comments, round robin over the PRs")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between two `/train` comments")
    p.add_argument("--merges", type=int, default=3, help="PRs bob merges (the release train trains each)")
    p.add_argument("--workers", type=int, default=8, help="the bot worker's --concurrency (threads)")
    p.add_argument(
        "--baseline",
        default="",
        help="figures to print beside this run's (default: the newest docs/performance/org-baseline-*.json)",
    )
    p.add_argument("--save-baseline", default="", help="also write this run's figures to FILE, with the commit")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    opts = p.parse_args()
    if opts.repos < 2 or opts.branches < 2 * opts.repos or opts.models < 2:
        p.error("an organisation needs 2 repositories and 2 models at least, and 2 branches per repository")
    harness.busy_before_start("the windows' counts stay right but the run takes longer")
    return harness.run("org-bench-", opts.keep, lambda run: body(run, opts), failures=(BenchError,))


if __name__ == "__main__":
    sys.exit(main())
