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
    applies: bool = True  # False: compares with a champion there is not (workers/core/gates.py)


@dataclass(frozen=True)
class Champion(Record):
    """The prod champion as a validate run scored it, on the candidate's data."""

    model: str
    version: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Author(Record):
    """One identity behind a merged PR, as GitHub gave it at merge: `login` when GitHub linked it to an account (the
    PR's opener always is), else only the git identity (`email`, `name`) — or a `Co-authored-by:` trailer's."""

    role: str  # opened | authored | committed | co-authored
    login: str = ""
    email: str = ""
    name: str = ""
    bot: bool = False  # a bot account: `type` Bot, or a login ending `[bot]`
    commit: str = ""  # the commit it comes from ("" for the opener)


@dataclass(frozen=True)
class Authorship(Record):
    """Who wrote a merged PR: its opener and its commits' authors, committers and co-authors, listed by the bot at
    merge (workers/release/train.py) from GitHub's PR commits listing — never from what the code says of itself."""

    authors: tuple[Author, ...] = ()
    commits: int = 0  # how many commits the listing gave (GitHub lists 250 at most)

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return cls(tuple(Author.from_json(a) for a in data.get("authors") or []), data.get("commits", 0))


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
    authorship: Authorship | None = None  # None: not listed at merge (an older record, or GitHub was not configured)
    # the validation
    validation_run: int | None = None
    validation_url: str = ""
    followed: bool = False
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    data: str = ""
    gates: tuple[Gate, ...] = ()
    champion: Champion | None = None
    unchecked: bool = False  # passed with no gate deciding (a first release, no absolute gate): listed approvers only
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
        champion, authorship = data.get("champion"), data.get("authorship")
        return replace(
            super().from_json(data),
            approvals=tuple(Approval.from_json(a) for a in data.get("approvals") or []),
            gates=tuple(Gate.from_json(g) for g in data.get("gates") or []),
            champion=Champion.from_json(champion) if champion else None,
            authorship=Authorship.from_json(authorship) if authorship is not None else None,
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
    trained: str = ""  # on the PR, as its runs said at merge: trained | running | failed | no ("": from before)


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
    authorship: Authorship | None = None  # who wrote the merged PR, listed at merge (None: not listed)

    @classmethod
    def from_json(cls, data: Json) -> Self:
        authorship = data.get("authorship")
        return replace(
            super().from_json(data),
            dev=DevStage.from_json(data["dev"]),
            staging=StagingStage.from_json(data["staging"]),
            prod=ProdStage.from_json(data["prod"]),
            history=tuple(Event.from_json(e) for e in data.get("history") or []),
            authorship=Authorship.from_json(authorship) if authorship is not None else None,
        )


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


@dataclass(frozen=True)
class SlackTried(Record):
    """When the bot first tried a Slack post: a run again looks for it from then on (workers/release/feedback.py)."""

    at: float
