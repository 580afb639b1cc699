"""The docs quote the code's numbers, link to what exists, and the README stays a map.

Issue #17: the README once said the visibility timeout was 900 s while the code said 90 s. Each number a
reader acts on (the visibility timeout, the task time limits, the body limit, the retry caps) is read here from
the code and looked for in the one page that states it; a mention of the visibility timeout with any other number
near it fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.celery_app import SHORT_COUNTDOWN, TASK_TIME_LIMIT, VISIBILITY_TIMEOUT, celery_settings
from core.config import BotSettings, GitHubSettings
from core.events import REPLAY_WINDOW_SECONDS
from core.saved_jobs import PIPELINE_FILE_BRANCH_JOBS, PIPELINE_FILE_DEFAULT_JOBS, SAVED_JOBS_LIMIT, WARN_SHARE
from core.vocabulary import BEAT_SCHEDULE, REDELIVER_FAILED_DELIVERIES, SEND_DUE_TASKS
from workers.delivery import reconciler, redelivery
from workers.errors import MAX_RATE_LIMIT_WAIT, MAX_RETRIES
from workers.gateways.registry import ABANDONED_AFTER_S
from workers.release import polling

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 200
SOFT_TIME_LIMIT = celery_settings("redis://unused")["task_soft_time_limit"]
BOT = BotSettings.model_validate({})
GITHUB = GitHubSettings.model_validate({})
MIB = 1024 * 1024
# a command lost on a quiet repository waits for its next pass: the longest wait, plus half a beat of lateness
LONGEST_REPAIR_MINUTES = (reconciler.QUIET_WAIT_MAX + reconciler.BEAT_SECONDS / 2) / 60
# a duration quoted near a mention: "90 s", "**90 s**", "90 seconds"
DURATION = re.compile(r"(\d[\d,]*)(?:\*\*)?\s?(?:s\b|seconds\b)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def text(name: str) -> str:
    return (ROOT / name).read_text()


def beat_seconds(task: str) -> float:
    return next(seconds for name, seconds in BEAT_SCHEDULE.values() if name == task)


# (page, what it must say, why) — every number comes from the code
QUOTED = [
    ("docs/going-to-production.md", f"once they are **{VISIBILITY_TIMEOUT} s** old", "the visibility timeout"),
    (
        "docs/going-to-production.md",
        f"a task is cut at **{TASK_TIME_LIMIT} s** (`TASK_TIME_LIMIT`",
        "the hard time limit",
    ),
    ("docs/going-to-production.md", f"the soft limit, {SOFT_TIME_LIMIT} s,", "the soft time limit"),
    (
        "docs/going-to-production.md",
        f"later than **{SHORT_COUNTDOWN:g} s** (`SHORT_COUNTDOWN`",
        "the longest ETA message",
    ),
    ("docs/going-to-production.md", f"at most {MAX_RATE_LIMIT_WAIT:g} s a wait", "the longest rate-limit wait"),
    ("docs/going-to-production.md", f"every {beat_seconds(SEND_DUE_TASKS):g} s", "the due index's beat"),
    ("docs/configuration.md", f"`{BOT.max_body_bytes}` ({BOT.max_body_bytes // MIB} MiB", "the request body limit"),
    ("docs/configuration.md", f"| `dedupe_ttl_seconds` | `{BOT.dedupe_ttl_seconds}`", "the dedupe window"),
    ("docs/configuration.md", f"| `redeliver_per_pass` | `{GITHUB.redeliver_per_pass}` |", "redeliveries a pass"),
    ("docs/reliability.md", f"up to **{MAX_RETRIES}** times (`workers/errors.py`", "the task retry cap"),
    ("docs/reliability.md", f"at most **{redelivery.MAX_REDELIVERIES}** times a delivery", "redeliveries a delivery"),
    ("docs/reliability.md", f"older than {reconciler.GRACE_SECONDS:g} s (the live", "the reconciler's grace"),
    (
        "docs/reliability.md",
        f"Every {reconciler.BEAT_SECONDS / 60:g} minutes beat lists, for each",
        "the reconciler's beat",
    ),
    ("docs/reliability.md", f"from 2 minutes up to **{reconciler.QUIET_WAIT_MAX // 60} minutes**", "the longest wait"),
    ("docs/reliability.md", f"up to **{LONGEST_REPAIR_MINUTES:g} minutes** after it was posted", "the longest repair"),
    (
        "workers/delivery/reconciler.py",
        f"plus half a beat — {LONGEST_REPAIR_MINUTES:g} minutes —",
        "the longest repair",
    ),
    ("workers/delivery/reconciler.py", f"up to QUIET_WAIT_MAX ({reconciler.QUIET_WAIT_MAX // 60} minutes)", "the wait"),
    ("docs/reliability.md", f"younger than {redelivery.GRACE_SECONDS:g} s wait", "the redelivery's grace"),
    (
        "docs/reliability.md",
        f"{beat_seconds(REDELIVER_FAILED_DELIVERIES) / 60:g} minutes beat lists the App",
        "the redelivery's beat",
    ),
    ("docs/security-model.md", f"within {REPLAY_WINDOW_SECONDS} s", "the replay window"),
    ("docs/configuration.md", f"| `job_ttl_days` | `{BOT.job_ttl_days}` |", "the jobs' TTL"),
    ("docs/configuration.md", f"| `active_branches_per_repo` | `{BOT.active_branches_per_repo}` |", "active branches"),
    ("docs/architecture.md", f"at most {SAVED_JOBS_LIMIT:,} saved jobs in a workspace", "Databricks' saved jobs"),
    (
        "docs/architecture.md",
        f"Past {WARN_SHARE:.0%} of {SAVED_JOBS_LIMIT:,}".replace("%", " %"),
        "the warning's share",
    ),
    (
        "docs/architecture.md",
        f"counts {PIPELINE_FILE_BRANCH_JOBS} jobs a branch and {PIPELINE_FILE_DEFAULT_JOBS} on its default branch",
        "a pipeline file's estimate",
    ),
    ("docs/unity-catalog.md", f"Younger than {ABANDONED_AFTER_S} s", "an abandoned copy's age"),
    ("docs/unity-catalog.md", f"reads up to {polling.SWEEP_PER_PASS} models (`SWEEP_PER_PASS`)", "the sweep a pass"),
    ("docs/unity-catalog.md", f"(`SWEEP_SECONDS` = {polling.SWEEP_SECONDS})", "the sweep's interval"),
]


@pytest.mark.parametrize(("page", "quote", "what"), QUOTED, ids=[q[2] for q in QUOTED])
def test_the_docs_quote_the_codes_numbers(page: str, quote: str, what: str) -> None:
    assert " ".join(quote.split()) in " ".join(text(page).split()), f"{page} should state {what}: {quote!r}"


def test_the_body_limit_is_the_25_mib_the_docs_name() -> None:
    assert BOT.max_body_bytes == 25 * MIB


def durations_near(body: str, mention: re.Pattern[str], after: int = 40, before: int = 25) -> list[tuple[int, str]]:
    """The durations next to each mention (the first within `after` characters, the last within `before`)."""
    flat = " ".join(body.split())
    found = []
    for m in mention.finditer(flat):
        start = max(0, m.start() - before)
        ahead = DURATION.search(flat[m.end() : m.end() + after])
        behind = DURATION.findall(flat[start : m.start()])
        around = flat[start : m.end() + after]
        found += [(int(n.replace(",", "")), around) for n in [*(ahead.groups() if ahead else ()), *behind[-1:]]]
    return found


VISIBILITY = re.compile(r"visibility[ _]timeout", re.IGNORECASE)


def wrong_visibility_timeouts(body: str) -> list[str]:
    return [where for seconds, where in durations_near(body, VISIBILITY) if seconds != VISIBILITY_TIMEOUT]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_no_page_names_another_visibility_timeout(page: Path) -> None:
    wrong = wrong_visibility_timeouts(page.read_text())
    assert not wrong, f"{page.name}: the visibility timeout is {VISIBILITY_TIMEOUT} s (core/celery_app.py): {wrong}"


@pytest.mark.parametrize(
    "sentence",
    [
        "A task whose worker died comes back after the visibility timeout (900 s; `CELERY_VISIBILITY_TIMEOUT`).",
        "keep `CELERY_VISIBILITY_TIMEOUT` above 600 s.",
        "kombu hands them on once they are **900 s** old — the visibility timeout.",
    ],
)
def test_the_visibility_check_can_fail(sentence: str) -> None:
    """What the README once said is caught."""
    assert wrong_visibility_timeouts(sentence)


def test_the_readme_is_a_map() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move details to docs/ and link them"


def test_the_readme_links_every_docs_page() -> None:
    linked = {target.split("#")[0] for _, target in links(README)}
    missing = [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in linked]
    assert not missing, "docs pages the README does not link: " + ", ".join(missing)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def links(page: Path) -> list[tuple[Path, str]]:
    """(page, target) of every relative Markdown link outside code blocks."""
    body = FENCE.sub("", page.read_text())
    return [(page, t) for t in LINK.findall(body) if not re.match(r"[a-z]+:", t)]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    body = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#+\s+(.*)$", body, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_relative_links_point_at_what_exists(page: Path) -> None:
    broken = []
    for _, target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.name}: " + ", ".join(broken)
