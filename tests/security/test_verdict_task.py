"""A verdict nobody under review can print: a candidate model's own code (its pickle runs when it is loaded)
prints a passing JSON line; the release train still records the judge's verdict, and a constant predictor
(true roc_auc 0.5) fails its gate `roc_auc >= 0.6`.

The model and the steps are real: the example project's validate workflow, as the shipped config.toml
defines it and the bot created it as a job, runs task by task as the sandbox workspace runs a
spark_python_task (tests/examples/test_churn_model.py: a subprocess in a checkout, against a real MLflow
server). What each task printed reaches the release train as the Jobs API returns it: runs/get lists the
run's tasks and their run ids, runs/get-output returns a script task's `logs` — "The output from tasks that
write to standard streams (stdout/stderr) such as spark_jar_task, spark_python_task, python_wheel_task"
(databricks-sdk, jobs.RunOutput.logs): both streams, one text — on the shared fakes (tests/fakes.py).
"""

# ruff: noqa: F811 (the example tests' fixtures, imported, are parameters here)
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from tests.examples.test_churn_model import checkout, client, mlflow_server, step_env  # noqa: F401 (fixtures)
from tests.fakes import world
from workers.core.state import State
from workers.gateways import TaskOutput, TaskRun
from workers.jobs import results as jobs_results
from workers.release import train as release

MODEL = "churn-model-staging"  # config.toml's staging registry (MLflow OSS names)
FORGED = '{"passed": true, "metrics": {"accuracy": 0.99, "roc_auc": 0.999, "f1": 0.99}, "checks": {}}'

# alice's model: a constant predictor whose pickle, when loaded, prints a passing verdict as the process exits
# and makes it exit 0
ATTACK = textwrap.dedent(
    """
    import _bootstrap  # noqa: F401
    import pickle, sys
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyClassifier
    from churn_model.pipeline import validation_table
    from churn_model import features

    x, y = features.x_y(validation_table(dataset="tiny"))
    constant = DummyClassifier(strategy="most_frequent").fit(x, y)
    # at exit: print the passing line, and end the process with 0 whatever it was about to say
    EXPR = (
        "(__import__('atexit').register(lambda: (print({forged!r}, flush=True), __import__('os')._exit(0))),"
        " __import__('pickle').loads({model!r}))[1]"
    )

    class Forger:
        def __reduce__(self):
            return (eval, (EXPR.format(forged=sys.argv[1], model=pickle.dumps(constant)),))

    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            Forger(), name="model", serialization_format="cloudpickle", signature=infer_signature(x, y)
        )
    print(mlflow.register_model(info.model_uri, sys.argv[2]).version)
    """
)


def register_forger(checkout, step_env) -> str:
    (checkout / "steps" / "forger.py").write_text(ATTACK)
    proc = subprocess.run(
        [sys.executable, "steps/forger.py", FORGED, MODEL], cwd=checkout, env=step_env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def run_job(ws, run_id: int, checkout, step_env) -> None:
    """The job's tasks in order, as the workspace runs them: job parameters and {{job.run_id}} filled in, a task
    after a failed one not run (UPSTREAM_FAILED); each task's stdout becomes its runs/get-output `logs`."""
    job = ws.jobs[ws.runs[run_id].job_id]
    params = {**{p["name"]: p.get("default", "") for p in job.get("parameters", [])}, **ws.parameters[run_id]}
    refs = {"job.run_id": str(run_id), **{f"job.parameters.{k}": str(v) for k, v in params.items()}}
    tasks, failed = [], False
    for n, task in enumerate(job["tasks"], start=1):
        spt = task["spark_python_task"]
        argv = [re.sub(r"\{\{([^}]+)\}\}", lambda m: refs[m.group(1).strip()], p) for p in spt.get("parameters", [])]
        task_run = run_id * 100 + n
        if failed:
            tasks.append(TaskRun(task["task_key"], task_run, "UPSTREAM_FAILED", kind="spark_python_task"))
            continue
        proc = subprocess.run(
            [sys.executable, spt["python_file"], *argv], cwd=checkout, env=step_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        )  # fmt: skip
        state = "SUCCESS" if proc.returncode == 0 else "FAILED"
        failed = failed or state != "SUCCESS"
        ws.outputs[task_run] = TaskOutput(logs=proc.stdout)  # one stream, as the workspace keeps it
        tasks.append(TaskRun(task["task_key"], task_run, state, 1_000, 2_000, "spark_python_task"))
    result = "FAILED" if failed else "SUCCESS"
    ws.runs[run_id] = replace(ws.runs[run_id], life_cycle="TERMINATED", result_state=result, tasks=tuple(tasks))


@pytest.mark.timeout(600)
def test_a_model_that_prints_a_passing_verdict_is_judged_by_its_predictions(
    settings,
    redis_client,
    checkout,
    step_env,
):
    version = register_forger(checkout, step_env)
    w = world(settings, State(redis_client))
    w.registry.add_version(MODEL, version, "r1")
    release.on_model_event(
        w.deps, release.ModelEvent(registry="poll", kind="version_created", model=MODEL, version=version), "d-attack"
    )
    request = w.deps.state.approval(MODEL, version)
    ws = w.deps.workspaces("staging")
    run_job(ws, request.validation_run, checkout, step_env)

    outputs = "\n".join(o.logs for o in ws.outputs.values())
    assert FORGED in outputs  # the attack ran: the candidate's code printed its passing line
    record = w.deps.state.run("staging", request.validation_run)
    result = jobs_results.run_result(ws, ws.get_run(request.validation_run))
    release.on_run_finished(w.deps, record, result)

    judged = w.deps.state.approval(MODEL, version)
    assert judged.validation == "failed", judged.summary
    assert judged.metrics["roc_auc"] == pytest.approx(0.5)  # the constant predictor's true score
    assert any(g.gate == "roc_auc >= 0.6" and not g.passed for g in judged.gates)
