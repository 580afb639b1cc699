"""Promotion gates from config (`accuracy >= champion - 0.01`, `roc_auc >= 0.6`), evaluated purely.

A gate against the champion with no champion to compare with (a first release, or a champion that never logged
the metric) is not applicable: it neither passes nor fails, and says so. Only the gates that applied decide.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from core.vocabulary import GATE

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
NO_CHAMPION = "no champion yet"


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool  # False when it does not apply: never a pass by default
    detail: str
    applies: bool = True  # False: a gate against the champion, with no champion score to compare with


def evaluate(gate: str, metrics: dict[str, float], champion: dict[str, float] | None) -> GateResult:
    m = GATE.match(gate)
    if not m:
        return GateResult(gate, False, "cannot read this gate")
    metric, op = m.group("metric"), m.group("op")
    if metric not in metrics:
        return GateResult(gate, False, f"{metric} was not logged by this run")
    value = float(metrics[metric])
    if m.group("number"):
        threshold = float(m.group("number"))
    else:
        if not champion:
            return GateResult(gate, False, NO_CHAMPION, applies=False)
        if metric not in champion:
            return GateResult(gate, False, f"the champion has no {metric} score", applies=False)
        delta = float(m.group("delta") or 0) * (-1 if m.group("sign") == "-" else 1)
        threshold = float(champion[metric]) + delta
    passed = OPS[op](value, threshold)
    return GateResult(gate, passed, f"{value:.4f} {op} {threshold:.4f}")


def evaluate_all(gates: list[str], metrics: dict[str, float], champion: dict[str, float] | None) -> list[GateResult]:
    return [evaluate(g, metrics, champion) for g in gates]
