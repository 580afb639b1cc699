"""How every step ends: a short human summary, then exactly one JSON line of results.

mlops-bot reads the last JSON line a task printed (a notebook's: the value it exits with): `mlflow_run_id` and
`metrics` of training, and the judge's verdict (`passed`, `metrics`, `champion_metrics`, `champion`...).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def result_line(result: dict[str, Any]) -> str:
    return json.dumps(jsonable(result), sort_keys=True, default=str)


def emit(summary: Iterable[str], result: dict[str, Any]) -> None:
    """Print the summary lines, then the results as one JSON line, and flush."""
    for line in summary:
        print(line)
    print(result_line(result), flush=True)


def run_step(step: str, body: Callable[[], int | None]) -> int:
    """Run a step body; the project's expected errors become a message on stderr, `{"error": ...}` and exit 2."""
    from fraud_detection.models import ModelError, ParamError
    from fraud_detection.pipeline import StepError

    try:
        return int(body() or 0)
    except (ModelError, ParamError, StepError) as exc:
        print(f"{step}: error: {exc}", file=sys.stderr, flush=True)
        print(json.dumps({"error": str(exc), "step": step}, sort_keys=True), flush=True)
        return 2


def fmt_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())


def validation_summary(result: dict[str, Any]) -> list[str]:
    """The lines people read above a verdict's JSON line: the verdict, the metrics, errors, the champion."""
    failed = [name for name, ok in result["checks"].items() if not ok]
    lines = [
        f"validated {result['model']} version {result['version']} on the {result['data']}: "
        + ("PASSED" if result["passed"] else f"FAILED ({', '.join(failed)})")
    ]
    if result["metrics"]:
        lines.append(f"candidate: {fmt_metrics(result['metrics'])}")
    lines += [f"  - {error}" for error in result["errors"]]
    if result["champion_metrics"] is not None:
        lines.append(
            f"champion {result['champion']} (version {result['champion_version']}) on the same rows: "
            f"{fmt_metrics(result['champion_metrics'])}"
        )
    elif result.get("champion_error"):
        lines.append(result["champion_error"])
    else:
        lines.append("no champion yet" + (f": {result['champion']} does not exist" if result["champion"] else ""))
    return lines
