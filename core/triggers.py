"""What starts a workflow: the command that runs it, push branch filters and a Quartz cron schedule, pure.

A workflow says which command runs it (`command = "train"`); unwritten, a workflow named as a command that runs
a workflow (`train`, `test`, `deploy`) is that command's, so a config written before the key keeps its meaning,
and `command = ""` frees the name. One workflow per command in a repository.

`run_on = ["push"]` runs on a push to any branch; `run_on = [{ event = "push", branches = ["main",
"release/*"] }]` only on the branches that match one of the globs, read as GitHub Actions reads them:
"`*`: Matches zero or more characters, but does not match the `/` character" and "`**`: Matches zero
or more of any character" (docs.github.com, workflow syntax, filter pattern cheat sheet).

The schedule is checked for shape here, without databricks-sdk (the web process never imports it):
the Jobs API's `CronSchedule` takes a Quartz expression and a Java time zone id, both required.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from core.commands import WORKFLOW_COMMANDS

EVENTS = ("push", "pull_request", "model_version", "command")
# Quartz CronTrigger fields, in order; the seventh (year) is optional.
QUARTZ_FIELDS = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_QUARTZ_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2099))
_NAMES = {
    4: "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC",
    5: "SUN|MON|TUE|WED|THU|FRI|SAT",
}
QUARTZ_HELP = 'a Quartz cron expression has 6 or 7 fields: seconds minutes hours day-of-month month day-of-week [year], e.g. "0 0 3 * * ?"'


def check_command(command: str | None) -> str | None:
    """A workflow's `command`: one of the commands that run a workflow, or "" for none."""
    if command and command not in WORKFLOW_COMMANDS:
        raise ValueError(f"{command!r} is no command that runs a workflow (one of {', '.join(WORKFLOW_COMMANDS)})")
    return command


def command_of(name: str, workflow: Any) -> str:
    """The command that runs the workflow `name`: its `command`, else its name when a command is named so."""
    written = workflow.command
    return written if written is not None else name if name in WORKFLOW_COMMANDS else ""


def command_workflows(workflows: Mapping[str, Any]) -> dict[str, str]:
    """command → the workflow it runs, among `workflows` (a repository's)."""
    out: dict[str, str] = {}
    for name, workflow in workflows.items():
        out.setdefault(command_of(name, workflow), name)
    out.pop("", None)
    return out


def command_clash(workflows: Mapping[str, Any]) -> str | None:
    """Why `workflows` (a repository's) cannot say which workflow a command runs: two claim it; None when none do."""
    seen: dict[str, str] = {}
    for name, workflow in workflows.items():
        command = command_of(name, workflow)
        if command and command in seen:
            both = " and ".join(_claim(n, workflows[n]) for n in (seen[command], name))
            return f"/{command} is run by two workflows, {both}; one workflow per command"
        seen.setdefault(command, name)
    return None


def _claim(name: str, workflow: Any) -> str:
    how = (
        'by its name: write command = "" to free it' if workflow.command is None else f'command = "{workflow.command}"'
    )
    return f"workflows.{name} ({how})"


def normalise_run_on(value: Any) -> tuple[list[str], list[str]]:
    """`run_on` as written → (its events, the push branch globs; empty = every branch)."""
    if not isinstance(value, list):
        raise ValueError('run_on: a list of events, e.g. ["push"] or [{ event = "push", branches = ["main"] }]')
    events: list[str] = []
    branches: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            event, globs = _filtered(i, item)
            branches += globs
        else:
            event = item
        if event in events:
            raise ValueError(f"run_on[{i}]: {event!r} is listed twice")
        events.append(event)
    return events, branches


def _filtered(i: int, item: dict) -> tuple[Any, list[str]]:
    unknown = set(item) - {"event", "branches"}
    if unknown:
        raise ValueError(f'run_on[{i}]: unknown key(s) {sorted(unknown)}; write {{ event = "push", branches = [...] }}')
    event, globs = item.get("event"), item.get("branches", [])
    if globs and event != "push":
        raise ValueError(f"run_on[{i}].branches: only a push has branches to filter, not {event!r}")
    if not isinstance(globs, list) or not all(isinstance(g, str) and g.strip() for g in globs):
        raise ValueError(f'run_on[{i}].branches: a list of branch globs, e.g. ["main", "release/*"]')
    return event, globs


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(p, re.escape(p)) for p in parts) + r"\Z")


def branch_matches(branch: str, globs: list[str]) -> bool:
    """Does a push to `branch` pass the filter? No globs: every branch does."""
    return not globs or any(_glob(g).match(branch) for g in globs)


def check_quartz(expression: str) -> str:
    """The shape Quartz accepts: 6 or 7 fields, each of numbers, names, ranges, steps and its special characters."""
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise ValueError(f"{QUARTZ_HELP}; got {len(fields)} field(s)")
    for index, field in enumerate(fields):
        for part in field.split(","):
            if not _quartz_part(index, part.upper()):
                low, high = _QUARTZ_RANGES[index]
                raise ValueError(
                    f"{QUARTZ_FIELDS[index]} field {field!r}: expected {low}-{high}, a range a-b, a step x/n or a list"
                )
    if "?" not in (fields[3], fields[5]):
        # Quartz: day-of-month and day-of-week together are not supported; one of them must be '?'
        raise ValueError("put '?' in day-of-month or in day-of-week (Quartz supports only one of them)")
    return expression


def _quartz_part(index: int, part: str) -> bool:
    low, high = _QUARTZ_RANGES[index]
    if part == "*" or (part == "?" and index in (3, 5)):
        return True
    if index == 3 and re.fullmatch(r"L(-\d{1,2})?|LW|\d{1,2}W", part):
        return True
    if index == 5 and re.fullmatch(r"[1-7]L|[1-7]#[1-5]|L", part):
        return True
    names = _NAMES.get(index)
    value = rf"(\d+{'|' + names if names else ''})"
    m = re.fullmatch(rf"(\*|{value}(-{value})?)(/(\d+))?", part)
    if not m:
        return False
    numbers = [int(n) for n in re.findall(r"\d+", m.group(1))]
    return all(low <= n <= high for n in numbers) and (m.group(6) is None or 0 < int(m.group(6)) <= high)


class Schedule(BaseModel):
    """`schedule = { quartz_cron = "0 0 3 * * ?", timezone = "Europe/Amsterdam" }`: the Jobs API's CronSchedule."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    quartz_cron: str
    timezone: str = "UTC"

    @field_validator("quartz_cron")
    @classmethod
    def _quartz(cls, v: str) -> str:
        return check_quartz(v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'{v!r} is not a time zone id (e.g. "Europe/Amsterdam", "UTC")') from None
        return v
