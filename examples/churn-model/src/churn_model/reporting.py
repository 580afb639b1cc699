"""How every step ends: a short human summary, then exactly one JSON line of results.

The bot reads the last line of the task's output that is a JSON object (mlops-bot's docs/task-contract.md);
`mlops_bot_task.report`, vendored in src/mlops_bot_task, prints it and refuses what the bot could not read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from mlops_bot_task import report


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # paths and the like: shown as text


def emit(summary: Iterable[str], result: dict[str, Any]) -> None:
    """Print the summary lines, then the results as the one JSON line the bot reads."""
    for line in summary:
        print(line)
    report(**_jsonable(result))


def fail(step: str, message: str, code: int = 2) -> NoReturn:
    """Report a step that could not run: message on stderr, `{"error": ...}` as the JSON line."""
    print(f"{step}: error: {message}", file=sys.stderr)
    report(error=message, step=step)
    raise SystemExit(code)


def run_step(step: str, body: Callable[[], int | None]) -> int:
    """Run a step body, turning the project's expected errors into a clear message + exit 2."""
    from churn_model.model import ParamError
    from churn_model.pipeline import StepError

    try:
        return int(body() or 0)
    except (ParamError, StepError) as exc:
        fail(step, str(exc))
    return 2  # pragma: no cover


def fmt_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in metrics.items())


def validation_summary(result: dict[str, Any]) -> list[str]:
    """The lines people read above a validation's JSON line: verdict, metrics, errors, the champion."""
    failed = [name for name, ok in result["checks"].items() if not ok]
    lines = [
        f"validated {result['model']} version {result['version']} on the {result['data']}: "
        + ("PASSED" if result["passed"] else f"FAILED ({', '.join(failed)})")
    ]
    if result["metrics"]:
        lines.append(f"candidate metrics: {fmt_metrics(result['metrics'])}")
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
    lines.append(f"validation run {result['validation_run_id']}")
    return lines
