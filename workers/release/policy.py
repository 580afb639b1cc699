"""The release train's decisions, as pure functions of plain values: how a version compares with the
champion, whether validation passed, who may approve a version (four eyes over who wrote it: the opener, its
commits' authors, committers and co-authors, as workers/release/authorship.py reads them) and when it is promoted.
No I/O: the services gather the facts and act.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.stages import Stage, stage, stage_named
from core.vocabulary import ACTIVE, GOOD
from workers.core.gates import GateResult, evaluate_all
from workers.core.permissions import ranks_at_least
from workers.core.records import ApprovalRequest, Champion
from workers.core.run_records import RunRecord
from workers.release import authorship, texts

# decisions written to the audit trail at most once per version (an approval once per approver)
AUDIT_ONCE = frozenset({"validated", "requested", "promoted", "rejected", "deployed"})


@dataclass(frozen=True)
class Comparison:
    """A version's (or a run's) metrics against the champion, through the model's gates."""

    champion: Champion | None
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every gate that applied passed (a gate against a champion there is not applies to nothing)."""
        return all(g.passed for g in self.gates if g.applies)

    @property
    def unchecked(self) -> bool:
        """No gate decided: none applied (a first release whose gates all compare with the champion, or a model
        with no gates and no champion yet). Then people decide, never a silent pass."""
        return not any(g.applies for g in self.gates) and (self.champion is None or bool(self.gates))


def dev_training(runs: Iterable[RunRecord], model: str, dev: Stage, first: str) -> str:
    """What a pull request's own runs say of `model`'s dev training: "trained" (a run of its dev workflow for it
    succeeded), "running" (one has not finished), "failed" (runs, none succeeded) or "no". A run is the model's when
    it was started for it (one of several), else when it wrote its dev registry, else when the model is the first
    its dev workflow trains."""

    def mine(run: RunRecord) -> bool:
        if run.context.purpose or run.workflow != dev.workflow:
            return False
        if run.context.model:
            return run.context.model == model
        registry = run.parameters.get("model")
        return registry == dev.registry_name if registry else model == first

    results = [run.result.result if run.result else run.state for run in runs if mine(run)]
    if any(result in GOOD for result in results):
        return "trained"
    if any(result in ACTIVE for result in results):
        return "running"
    return "failed" if results else "no"


def compare(gates: list[str], metrics: dict[str, float], champion: Champion | None, version: str = "") -> Comparison:
    """The one champion-and-gates evaluation; comparing a version with itself says nothing."""
    if champion and version and champion.version == str(version):
        champion = None
    return Comparison(champion, evaluate_all(gates, metrics, champion.metrics if champion else None))


def validation_outcome(result: str, outputs: Mapping[str, Any], comparison: Comparison) -> tuple[bool, str]:
    """(passed, summary) of a finished validate run."""
    metrics = outputs.get("metrics") or {}
    if result == "SUCCESS" and "passed" not in outputs and not metrics:
        return False, texts.VALIDATION_SAID_NOTHING  # a run's success alone proves nothing about the model
    ran_ok = result == "SUCCESS" and outputs.get("passed", True) is not False
    passed = ran_ok and comparison.passed
    failed_gates = [f"{g.gate} ({g.detail})" for g in comparison.gates if g.applies and not g.passed]
    moot = "; ".join(f"{g.gate}: n/a — {g.detail}" for g in comparison.gates if not g.applies)
    summary = texts.validation_summary(passed, ran_ok, metrics, failed_gates, result, moot)
    return passed, summary + (texts.NO_GATE_DECIDED if passed and comparison.unchecked else "")


def deploy_refusal(settings: Settings, request: ApprovalRequest, name: str) -> str | None:
    """`/deploy` follows the chain: staging deploys a validated version, prod only an approved (promoted) one."""
    stage_ = stage_named(settings, request.model, name)
    ref = request.ref
    if stage_ is None or stage_.trigger == "pull_request":
        return texts.not_a_stage(name, [s.name for s in settings.stages(request.model) if s.trigger != "pull_request"])
    if stage_.trigger == "merge" and request.validation != "passed":
        return texts.deploy_chain(name, ref, f"it has not passed validation (validation: {request.validation})")
    if stage_.trigger == "approval" and (request.status != "approved" or not request.prod_version):
        return texts.deploy_chain(
            name, ref, f"a version reaches {stage_.name} only after it passed staging with the {request.needed} "
            f"approval(s) {stage_.name} requires (status: {request.status}, validation: {request.validation})",
        )  # fmt: skip
    return None


def approvals_needed(proven: bool, prod: Stage) -> int:
    """The prod stage's count; a version without lineage the bot can prove needs two listed approvers at least."""
    needed = prod.required_approvals or 1
    return needed if proven else max(needed, 2)


# --- approvals -------------------------------------------------------------------------------------------
def approval_refusal(
    request: ApprovalRequest | None,
    approver: str,
    role: str,
    settings: Settings,
    model: str,
    version: str,
    listed: bool = False,
) -> str | None:
    """The approval policy, as rules in order; returns the reason of the rule that refuses, or None.
    `listed`: the approver is one of the prod stage's approvers (a login, or a member of a listed team)."""
    why = texts.approval_refusals(model, version)
    if request is None:
        return why["none"]
    if request.status != "pending":
        return why["decided"].format(status=request.status)
    if request.validation != "passed":
        return why["unvalidated"].format(validation=request.validation)
    if authorship.is_bot(approver, settings):
        return why["bot"].format(approver=approver)
    spec, needed = settings.models[request.model or model], settings.permissions.needed("approve")
    if not (ranks_at_least(role, needed) or listed):
        return why["permission"].format(needed=needed, repo=request.repo or spec.repo, approver=approver, role=role)
    approvers = ", ".join(stage(settings, request.model, "approval").approvers or []) or texts.NO_APPROVERS
    if not request.proven and not listed:
        return why["unproven"].format(approvers=approvers)
    if request.unchecked and not listed:
        return why["unchecked"].format(approvers=approvers)
    roles = _four_eyes(request, approver, settings)
    if roles:
        return why["four-eyes"].format(approver=approver, roles=texts.four_eyes_roles(roles))
    unknown = authorship.unknown(request.authorship, settings) if request.proven else ""
    if unknown and not listed:
        return why["unknown"].format(why=unknown, approvers=approvers)
    if approver.lower() in {a.by.lower() for a in request.approvals}:
        return why["twice"].format(approver=approver)
    return None


def _four_eyes(request: ApprovalRequest, approver: str, settings: Settings) -> list[str]:
    """What `approver` did to the change (opened, wrote, committed, co-wrote it, merged a bots-only PR, started its
    training), from the bot's own records; none: their eyes are a second pair."""
    me = approver.lower()
    roles = ["opened the pull request"] if request.pr_author.lower() == me else []
    if request.authorship is not None:
        roles += authorship.roles_of(request.authorship, approver, settings, request.merged_by)
    if request.trained_by.lower() == me:
        roles.append("started the training")
    if authorship.ROLES["authored"] in roles:  # who wrote the commits committed them too, mostly: said once
        roles = [r for r in roles if r != authorship.ROLES["committed"]]
    return list(dict.fromkeys(roles)) if me else []


def authorship_known(request: ApprovalRequest, settings: Settings) -> bool:
    """The bot can name everyone who wrote the version's pull request (it needs fewer approvals then)."""
    return request.proven and not authorship.unknown(request.authorship, settings)


def audit_once_key(decision: str, model: str, version: str, actor: str) -> str:
    """What makes a decision unique in the audit trail ('' = every occurrence is recorded)."""
    if decision in AUDIT_ONCE:
        return f"{decision}:{model}:{version}"
    return f"{decision}:{model}:{version}:{actor}" if decision == "approved" else ""


def promoted_enough(request: ApprovalRequest, required: int) -> bool:
    return len(request.approvals) >= required
