"""mlops_bot_task, the helper a Databricks task imports (docs/task-contract.md): the result line it prints is the
one the bot reads, what the bot could not read is refused with a reason, parameters come from argv or widgets —
and it stays one stdlib-only file that Python 3.9 parses, vendored unchanged into examples/churn-model."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

import mlops_bot_task as helper
from workers.jobs import results, texts

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "mlops_bot_task" / "__init__.py"
VENDORED = ROOT / "examples" / "churn-model" / "src" / "mlops_bot_task" / "__init__.py"
VERDICT = dict(
    metrics={"accuracy": 0.9, "roc_auc": 0.8},
    champion_metrics={"accuracy": 0.85, "roc_auc": 0.75},
    champion="models:/prod.ml.churn@champion",
    champion_version="3",
    data="validation set: 2,000 rows",
    passed=True,
)


def test_the_line_report_prints_is_the_one_the_bot_reads(capsys):
    line = helper.report(mlflow_run_id="r9", checks={"no_nan": True}, **VERDICT)
    out = capsys.readouterr().out
    assert out.endswith(line + "\n") and "\n" not in line  # the last line, one line
    said = results.read_report("judge", "scored 2,000 rows\n" + out)
    assert said.problem == "" and said.values == {"mlflow_run_id": "r9", "checks": {"no_nan": True}, **VERDICT}


def test_keywords_left_out_stay_out_and_none_is_null():
    assert json.loads(helper.result_line(passed=False)) == {"passed": False}
    assert json.loads(helper.result_line(champion_metrics=None, registered=None)) == {
        "champion_metrics": None,
        "registered": None,
    }
    assert helper.result_line(b=1, a=2) == '{"a": 2, "b": 1}'  # keys sorted


def test_other_real_numbers_are_written_as_plain_json_numbers():
    # numpy's float32 and int64 are numbers.Real too, though not float or int
    assert json.loads(helper.result_line(metrics={"f1": Fraction(1, 4)}, rows=Fraction(6, 3))) == {
        "metrics": {"f1": 0.25},
        "rows": 2.0,
    }


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"passed": "yes"}, "result key `passed` must be true or false, not a string"),
        ({"passed": 1}, "result key `passed` must be true or false, not a number"),
        ({"mlflow_run_id": ""}, "result key `mlflow_run_id` must be a non-empty string, not an empty string"),
        ({"mlflow_run_id": 42}, "result key `mlflow_run_id` must be a non-empty string, not a number"),
        ({"metrics": [0.9]}, "result key `metrics` must be an object of metric names to finite numbers, not an array"),
        ({"metrics": {"accuracy": float("nan")}}, "result key `metrics.accuracy` must be a finite number, not NaN"),
        ({"metrics": {"loss": float("-inf")}}, "result key `metrics.loss` must be a finite number, not infinity"),
        ({"metrics": {"auc": "0.9"}}, "result key `metrics.auc` must be a finite number, not a string"),
        ({"metrics": {1: 0.9}}, "result key `metrics[1]` must be a metric named by a string, not a number"),
        ({"champion_metrics": {"auc": True}}, "`champion_metrics.auc` must be a finite number, not true (a boolean)"),
        ({"champion_version": 2.5}, "`champion_version` must be a string or an integer, not a number"),
        ({"data": None}, "result key `data` must be a string, not null"),
        ({"curve": [0.1, float("nan")]}, "result key `curve[1]` is NaN: JSON has no NaN or infinity"),
        ({"params": {3: "deep"}}, "result key `params` has the key 3, a number: JSON keys are strings"),
        ({"day": date(2026, 1, 2)}, "result key `day` is a Python date: only strings, numbers"),
    ],
)
def test_what_the_bot_could_not_read_is_refused_naming_the_key(fields, message, capsys):
    with pytest.raises(ValueError) as exc:
        helper.report(**fields)
    assert message in str(exc.value)
    assert capsys.readouterr().out == ""  # nothing half-written


def test_a_notebook_hands_the_line_to_dbutils_notebook_exit(capsys):
    class Exit(BaseException):
        pass

    class Notebook:
        def exit(self, value):
            raise Exit(value)  # dbutils.notebook.exit ends the notebook

    class DBUtils:
        notebook = Notebook()

    with pytest.raises(Exit) as exc:
        helper.report(dbutils=DBUtils(), passed=True, metrics={"auc": 0.9})
    assert results.read_report("judge", exc.value.args[0]).values == {"passed": True, "metrics": {"auc": 0.9}}
    assert capsys.readouterr().out == ""  # a notebook's print never reaches the bot


@pytest.mark.parametrize(
    "argv, found",
    [
        (["--dataset", "toy", "--sha=3f2c"], {"dataset": "toy", "sha": "3f2c"}),
        (["--model-name", "dev.ml.churn"], {"model_name": "dev.ml.churn"}),  # as argparse names it
        (["--params", "", "--register"], {"params": "", "register": ""}),  # an empty value; a flag
        (["--delta", "-0.01", "--champion="], {"delta": "-0.01", "champion": ""}),
        (["--url=https://x/?a=b"], {"url": "https://x/?a=b"}),  # the first = splits
        ([], {}),
    ],
)
def test_parameters_from_the_command_line(argv, found):
    assert helper.parameters(argv) == found


@pytest.mark.parametrize(
    "argv, message",
    [
        (["toy"], "argument 'toy' is not an option"),
        (["--dataset", "toy", "full"], "argument 'full' is not an option"),
        (["--"], "argument '--' is not an option"),
        (["--param", "a=1", "--param", "b=2"], "option --param is given twice"),
    ],
)
def test_parameters_refuse_what_they_cannot_place(argv, message):
    with pytest.raises(ValueError, match=message):
        helper.parameters(argv)


class Widgets:
    def getAll(self):  # noqa: N802 (Databricks' name)
        return {"dataset": "full", "sha": "3f2c"}


class DBUtils:
    widgets = Widgets()


def test_a_notebook_reads_its_widgets(monkeypatch):
    assert helper.parameters(dbutils=DBUtils()) == {"dataset": "full", "sha": "3f2c"}
    monkeypatch.setattr(sys, "argv", ["/databricks/python_shell/kernel.py", "-f", "/tmp/kernel.json"])
    monkeypatch.setattr(sys.modules["__main__"], "dbutils", DBUtils(), raising=False)
    assert helper.parameters() == {"dataset": "full", "sha": "3f2c"}  # the notebook's own dbutils
    monkeypatch.setattr(sys, "argv", ["steps/train.py", "--dataset", "toy"])
    assert helper.parameters() == {"dataset": "toy"}  # a script's options win over a dbutils it imported


def test_a_dbutils_without_get_all_is_refused_with_what_to_do():
    class Old:
        widgets = object()

    with pytest.raises(ValueError, match=r"read each parameter with dbutils.widgets.get\(name\)"):
        helper.parameters(dbutils=Old())


def test_the_helper_is_python_3_9_and_standard_library_only():
    source = SOURCE.read_text()
    tree = ast.parse(source, feature_version=(3, 9))  # a SyntaxError on a newer construct
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    outside = sorted(m for m in imported if m.split(".")[0] not in sys.stdlib_module_names | {"__future__"})
    assert not outside, f"mlops_bot_task must import the standard library only: {outside}"
    assert "from __future__ import annotations" in source  # `X | None` annotations stay strings on 3.9


def python_3_9() -> str | None:
    """A Python 3.9 interpreter that runs (pyenv's shim answers "command not found" for a version not selected)."""
    found = [*sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python")), shutil.which("python3.9")]
    for candidate in filter(None, map(str, found)):
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"]).returncode == 0:
            return candidate
    return None


def test_the_helper_runs_on_python_3_9():
    python = python_3_9()
    if python is None:
        pytest.skip("no Python 3.9 on this machine: the syntax check above still holds")
    script = (
        "import mlops_bot_task as h; h.report(passed=True, metrics={'auc': 0.9}, champion_metrics=None); "
        "print(h.parameters(['--model-name', 'm', '--flag']))"
    )
    ran = subprocess.run([python, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        '{"champion_metrics": null, "metrics": {"auc": 0.9}, "passed": true}',
        "{'model_name': 'm', 'flag': ''}",
    ]


def test_the_example_vendors_the_helper_unchanged():
    assert VENDORED.read_text() == SOURCE.read_text(), "copy mlops_bot_task/__init__.py to " + str(VENDORED)


def test_the_contract_page_lists_every_key_the_bot_reads_as_the_helper_checks_it():
    page = (ROOT / "docs" / "task-contract.md").read_text()
    for key, expected in helper.RESULT_KEYS.items():
        assert f"| `{key}` | {expected} |" in page, f"docs/task-contract.md: the row of `{key}`"


def test_the_contract_page_quotes_the_bots_words_and_numbers():
    page = " ".join((ROOT / "docs" / "task-contract.md").read_text().replace("\\`", "`").split())
    assert texts.no_result_line("judge") in page
    said = texts.bad_result_key("judge", "passed", helper.RESULT_KEYS["passed"], "a string")
    assert said.split(" (see")[0] in page  # the page leaves out the pointer to itself
    assert f"the last {results.OUTPUT_TAIL:,} characters of each task's output" in page
