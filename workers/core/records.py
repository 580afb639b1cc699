"""What the workers keep in Redis, as typed values: the release, the approval request, the run record and its
result, the lineage record and the plans a task keeps (workers/core/state.py saves and reads them, nothing else does).

Pure: no I/O. The JSON keeps today's keys, so a record saved by an older bot is read by this one. A field with
a default is written only when it differs from it (a key absent from the JSON means the default), unless the
record `writes_defaults` (the older bot wrote all its keys); a field without one is always written. Records are
frozen: a change is `dataclasses.replace`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, ClassVar, Self

Json = Mapping[str, Any]  # a record as json.loads gives it back


@dataclass(frozen=True)
class Record:
    """The one (de)serialiser of every record below; a record with nested records overrides `from_json`."""

    writes_defaults: ClassVar[bool] = False  # True: every key is written, defaults too

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("flat"):
                out.update(value.to_json())
            elif self.writes_defaults or not _is_default(f.default, f.default_factory, value):
                out[f.metadata.get("key", f.name)] = _plain(value)
        return out

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return cls(**_known(cls, data))


def _known(cls: type[Record], data: Json) -> dict[str, Any]:
    """The keys of `data` that are fields of `cls` (by their JSON key), by field name."""
    named = {f.metadata.get("key", f.name): f.name for f in fields(cls) if not f.metadata.get("flat")}
    return {named[k]: v for k, v in data.items() if k in named}


def _is_default(default: object, factory: Any, value: object) -> bool:
    if default is not MISSING:
        return value == default
    return factory is not MISSING and value == factory()


def _plain(value: object) -> object:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --- the approval request (workers/release/approvals.py) -------------------------------------------------------------
@dataclass(frozen=True)
class Approval(Record):
    by: str
    at: float
    source: str
    trigger: str = ""  # what identifies the command that approved (a comment's command, a Slack response URL)

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return cls(data["by"], data.get("at", 0.0), data.get("source", ""), data.get("trigger", ""))


@dataclass(frozen=True)
class Gate(Record):
    gate: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Champion(Record):
    """The prod champion as a validate run scored it, on the candidate's data."""

    model: str
    version: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class ApprovalRequest(Record):
    model: str
    name: str  # the staging registry's name: the request is `name@version`
    version: str
    status: str  # pending | approved | rejected
    validation: str  # pending | passed | failed | cancelled
    requested_at: float
    repo: str
    proven: bool  # the bot's own lineage record vouches for it (workers/release/lineage.py)
    claimed: dict[str, str]  # what the version's tags say of its origin: shown, never trusted
    mlflow_run_id: str
    approvals: tuple[Approval, ...]
    needed: int
    # the proven lineage
    branch: str = ""
    commit: str = ""
    pr: int | None = None
    pr_author: str = ""
    merged_by: str = ""
    job_run_id: int | None = None
    trained_by: str = ""
    # the validation
    validation_run: int | None = None
    validation_url: str = ""
    followed: bool = False
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    data: str = ""
    gates: tuple[Gate, ...] = ()
    champion: Champion | None = None
    # the decision and its steps
    slack_channel: str = ""
    slack_ts: str = ""
    decided_at: float | None = None
    promotion: str = ""  # running | done
    rejection: str = ""  # running | done
    rejected_by: str = ""
    reason: str = ""
    replaced: str | None = None  # the champion it replaced ("" for none); None: not looked up yet
    prod_version: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @classmethod
    def from_json(cls, data: Json) -> Self:
        champion = data.get("champion")
        return replace(
            super().from_json(data),
            approvals=tuple(Approval.from_json(a) for a in data.get("approvals") or []),
            gates=tuple(Gate.from_json(g) for g in data.get("gates") or []),
            champion=Champion.from_json(champion) if champion else None,
        )


# --- the release (workers/release/train.py) and its history ---------------------------------------------------------
@dataclass(frozen=True)
class Event(Record):
    """One step of a release, as data: `release_texts.history_text` words it. Saved by an older bot as
    `{"at", "text"}` only: kind "text", its line as both key and field."""

    kind: str
    key: str  # what makes the step unique within its kind (a run id, a version)
    fields: dict[str, str]
    at: float

    def to_json(self) -> dict[str, object]:
        if self.kind == "text":
            return {"at": self.at, "text": self.fields["text"]}
        return super().to_json()

    @classmethod
    def from_json(cls, data: Json) -> Self:
        if "kind" not in data:
            return cls("text", data["text"], {"text": data["text"]}, data["at"])
        return super().from_json(data)


@dataclass(frozen=True)
class DevStage(Record):
    name: str
    registry: str


@dataclass(frozen=True)
class StagingStage(Record):
    name: str
    registry: str
    dataset: str
    version: str = ""
    train_run: int | None = None
    train_url: str = ""
    train_state: str = ""
    problem: str = ""


@dataclass(frozen=True)
class ProdStage(Record):
    name: str
    registry: str
    version: str = ""
    deploy_state: str = ""
    deploy_url: str = ""


@dataclass(frozen=True)
class Release(Record):
    """A merged PR's way to prod, for one model (the release comment shows it)."""

    model: str
    repo: str
    pr: int
    sha: str
    author: str
    merged_by: str
    dev: DevStage
    staging: StagingStage
    prod: ProdStage
    history: tuple[Event, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return replace(
            super().from_json(data),
            dev=DevStage.from_json(data["dev"]),
            staging=StagingStage.from_json(data["staging"]),
            prod=ProdStage.from_json(data["prod"]),
            history=tuple(Event.from_json(e) for e in data.get("history") or []),
        )


# --- runs (workers/jobs/branch_jobs.py starts them, workers/pr/runs.py follows them) ----------------------------------
@dataclass(frozen=True)
class RunContext(Record):
    """Why a run was started, beyond what started it: the command that asked, or the release step it is."""

    comment_id: int | None = None  # the comment whose command asked for it (👍/👎 on it)
    command: str = ""
    release_model: str = ""  # a release's run: its model, stage and purpose (train | validate | retrain | deploy)
    stage: str = ""
    purpose: str = ""
    release_pr: int | None = None
    name: str = ""  # validate and deploy: the version
    version: str = ""
    deploy_to: str = ""
    repo_of_release: str = ""
    release_of: tuple[str, str, int] | None = None  # the release comment a deploy shows on: (model, repo, pr)
    approved: str = ""  # retrain: the approved `name@version`

    @classmethod
    def from_json(cls, data: Json) -> Self:
        found = super().from_json(data)
        release_of = data.get("release_of")
        return replace(found, release_of=(release_of[0], release_of[1], release_of[2]) if release_of else None)


@dataclass(frozen=True)
class TaskResult(Record):
    """One task of a finished run (workers/jobs/results.py `run_result`)."""

    writes_defaults = True

    key: str
    run_id: int
    result: str  # its result state
    duration_s: float = 0.0
    output: str = ""  # the end of what it said (a script's logs, a notebook's exit value), then its error


@dataclass(frozen=True)
class RunResult(Record):
    """A finished run as plain values (workers/jobs/results.py `run_result`), kept in its run record."""

    writes_defaults = True

    run_id: int
    job_id: int
    life_cycle: str
    result: str  # the result state, else the life cycle: what people are told
    message: str = ""
    run_page_url: str = ""
    duration_s: float = 0.0
    used_commit: str = ""
    tasks: tuple[TaskResult, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return replace(super().from_json(data), tasks=tuple(TaskResult.from_json(t) for t in data.get("tasks") or []))


@dataclass(frozen=True)
class RunRecord(Record):
    """A run the bot started, as it last saw it (`context` is saved flat, beside the other keys)."""

    run_id: int
    job_id: int
    job: str
    environment: str
    repo: str
    branch: str
    sha: str
    workflow: str
    pr: int | None  # the PR whose report it owns (none for a release's runs)
    requested_by: str
    parameters: dict[str, str]
    token: str
    state: str
    started_at: float
    context: RunContext = field(default=RunContext(), metadata={"flat": True})
    result: RunResult | None = None
    finished_at: float | None = None
    error: str = ""
    cancelled_by: str = ""
    superseded_by: int | None = None
    deployment_id: int | None = None

    @classmethod
    def from_json(cls, data: Json) -> Self:
        result = data.get("result")
        found = super().from_json(data)
        return replace(
            found, context=RunContext.from_json(data), result=RunResult.from_json(result) if result else None
        )


@dataclass(frozen=True)
class CachedJob(Record):
    """A branch's job id, found by its name once (workers/jobs/branch_jobs.py `upsert_job`)."""

    job_id: int
    fingerprint: str  # of the settings it was last made to match
    updated_at: float


# --- lineage (workers/release/lineage.py) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Lineage(Record):
    """What the bot wrote down when it started a release stage's training run (no expiry)."""

    repo: str
    branch: str
    commit: str
    pr: int | None
    pr_author: str
    merged_by: str
    registry: str
    started_at: float
    finished_at: float | None = None
    job_run_id: int | None = None  # set on a proof (`lineage.prove`), never saved


# --- what a task decided before its first write (State.keep_plan) ------------------------------------------
@dataclass(frozen=True)
class RollbackPlan(Record):
    current: str = field(metadata={"key": "from"})  # the champion when the rollback was asked for
    target: str = field(metadata={"key": "to"})


@dataclass(frozen=True)
class Verdict(Record):
    """The answer to an approval command (kept, so a command run again answers the same)."""

    ok: bool
    message: str


@dataclass(frozen=True)
class SlackPost(Record):
    channel: str
    ts: str


@dataclass(frozen=True)
class SlackAnswer(Record):
    text: str
