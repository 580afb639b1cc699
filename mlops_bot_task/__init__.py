"""The task side of mlops-bot's contract: read the parameters the bot passed, report the one result line it reads.

mlops-bot's docs/task-contract.md is the contract; this module is its executable half, for the code a Databricks
task runs. Standard library only, Python 3.9 or later: copy this one file into your project as
`mlops_bot_task/__init__.py` (or install mlops-bot's distribution, which ships it).

    from mlops_bot_task import parameters, report

    params = parameters()          # {"dataset": "toy", "sha": "3f2c…"} from `--dataset toy --sha=3f2c…`
    ...
    report(mlflow_run_id=run.info.run_id, metrics={"roc_auc": 0.91})

`report` prints one JSON object as the last line of the task's output (a notebook passes `dbutils=dbutils` and
the line becomes its `dbutils.notebook.exit` value): the bot reads that line and nothing else. It refuses what the
bot could not read — a wrong type, NaN or infinity, a key that is not a string — with a ValueError naming the key.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["RESULT_KEYS", "Problem", "check", "describe", "parameters", "report", "result_line"]

# The keys the bot reads, and what each must be. Any other key is shown to people, never read.
RESULT_KEYS = {
    "mlflow_run_id": "a non-empty string",
    "metrics": "an object of metric names to finite numbers",
    "passed": "true or false",
    "champion_metrics": "an object of metric names to finite numbers, or null",
    "champion": "a string",
    "champion_version": "a string or an integer",
    "data": "a string",
}
_UNSET: Any = object()  # a keyword not given: left out of the line (None is JSON null)


class Problem(NamedTuple):
    """One thing the bot could not read: `key` (`metrics.accuracy` for a value inside an object), what it must be,
    and what it is."""

    key: str
    expected: str
    got: str


def describe(value: Any) -> str:
    """A value's kind in JSON's words ("a string", "NaN", "null"), or its Python type when JSON has none."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "NaN"
        return "a number" if math.isfinite(value) else "infinity"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    kinds = ((Mapping, "an object"), ((list, tuple), "an array"))
    return next((word for kind, word in kinds if isinstance(value, kind)), f"a Python {type(value).__name__}")


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _metrics(key: str, value: Any, nullable: bool) -> list[Problem]:
    expected = RESULT_KEYS[key]
    if value is None and nullable:
        return []
    if not isinstance(value, Mapping):
        return [Problem(key, expected, describe(value))]
    found = []
    for name, number in value.items():
        if not isinstance(name, str):
            found.append(Problem(f"{key}[{name!r}]", "a metric named by a string", describe(name)))
        elif not _number(number):
            found.append(Problem(f"{key}.{name}", "a finite number", describe(number)))
    return found


_CHECKS = {
    "mlflow_run_id": lambda v: isinstance(v, str) and bool(v.strip()),
    "passed": lambda v: isinstance(v, bool),
    "champion": lambda v: isinstance(v, str),
    "champion_version": lambda v: isinstance(v, str) or (isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    "data": lambda v: isinstance(v, str),
}


def check(values: Mapping[str, Any]) -> list[Problem]:
    """What the bot could not read in a result object: each of RESULT_KEYS that is there with the wrong type."""
    found: list[Problem] = []
    for key in RESULT_KEYS:
        if key not in values:
            continue
        value = values[key]
        if key in ("metrics", "champion_metrics"):
            found += _metrics(key, value, nullable=key == "champion_metrics")
        elif not _CHECKS[key](value):
            found.append(Problem(key, RESULT_KEYS[key], describe(value)))
    return found


def _plain(key: str, value: Any) -> Any:
    """`value` as plain JSON (numpy-style scalars become int or float), or ValueError naming the key."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"result key `{key}` is {describe(value)}: JSON has no NaN or infinity")
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str):
                raise ValueError(f"result key `{key}` has the key {name!r}, {describe(name)}: JSON keys are strings")
        return {name: _plain(f"{key}.{name}", item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(f"{key}[{i}]", item) for i, item in enumerate(value)]
    raise ValueError(f"result key `{key}` is {describe(value)}: only strings, numbers, true/false, null, arrays and "
                     "objects go in the result line")  # fmt: skip


def result_line(
    *,
    mlflow_run_id: Any = _UNSET,
    metrics: Any = _UNSET,
    passed: Any = _UNSET,
    champion_metrics: Any = _UNSET,
    champion: Any = _UNSET,
    champion_version: Any = _UNSET,
    data: Any = _UNSET,
    **extra: Any,
) -> str:
    """The result as the one line the bot reads (a JSON object, keys sorted), checked: ValueError names what is
    wrong. Keywords not given are left out; any other keyword goes in as it is, for people to read."""
    named = dict(
        mlflow_run_id=mlflow_run_id, metrics=metrics, passed=passed, champion_metrics=champion_metrics,
        champion=champion, champion_version=champion_version, data=data,
    )  # fmt: skip
    values = {key: value for key, value in {**named, **extra}.items() if value is not _UNSET}
    problems = check(values)
    if problems:
        raise ValueError("; ".join(f"result key `{p.key}` must be {p.expected}, not {p.got}" for p in problems))
    plain = {key: _plain(key, value) for key, value in values.items()}
    return json.dumps(plain, sort_keys=True, allow_nan=False)


def report(*, dbutils: Any = None, **fields: Any) -> str:
    """Print the result line as the task's last line and return it (see `result_line` for the keywords).

    In a notebook pass `dbutils=dbutils`: a notebook's printed output never reaches the bot (the Jobs API returns
    only its `dbutils.notebook.exit` value), so the line is handed to `dbutils.notebook.exit`, which ends the
    notebook. Print nothing that looks like a JSON object after it: the bot reads the last one."""
    line = result_line(**fields)
    if dbutils is not None:
        dbutils.notebook.exit(line)
        return line
    sys.stderr.flush()  # stderr's buffered lines land before the result, not after it
    print(line, flush=True)
    return line


# --- parameters ---------------------------------------------------------------------------------------------------
def parameters(argv: Iterable[str] | None = None, *, dbutils: Any = None) -> dict[str, str]:
    """The task's parameters as {name: value}.

    A notebook reads its widgets (`dbutils.widgets.getAll()`: the task's base_parameters and the job's parameters).
    Pass `dbutils=dbutils`; without it, a `dbutils` global of the running notebook is used when the command line
    holds no `--` option. A Python script or wheel task reads its command line (`sys.argv[1:]`, or `argv`):
    `--name value` or `--name=value`, and `--flag` followed by another option (or nothing) is "". Dashes in a name
    become underscores (`--model-name` → `model_name`), as argparse does. ValueError for an argument that is not an
    option's or for an option given twice (parse those with argparse)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if dbutils is None and argv is None and not any(a.startswith("--") for a in args):
        dbutils = getattr(sys.modules.get("__main__"), "dbutils", None)
    if dbutils is not None:
        return _widgets(dbutils)
    return _options(args)


def _widgets(dbutils: Any) -> dict[str, str]:
    get_all = getattr(getattr(dbutils, "widgets", None), "getAll", None)
    if get_all is None:
        raise ValueError("this dbutils has no widgets.getAll(): read each parameter with dbutils.widgets.get(name)")
    return {str(name): str(value) for name, value in dict(get_all()).items()}


def _options(args: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, has_value, value = arg[2:].partition("=")
        if not arg.startswith("--") or not name:
            raise ValueError(f"argument {arg!r} is not an option: parameters() reads `--name value` pairs")
        if not has_value and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1
        key = name.replace("-", "_")
        if key in found:
            raise ValueError(f"option --{name} is given twice: parameters() keeps one value per name")
        found[key] = value
        i += 1
    return found
