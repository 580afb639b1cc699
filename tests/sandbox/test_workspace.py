"""End-to-end tests of the sandbox Databricks workspace, driven through the real databricks-sdk."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import (
    BadRequest,
    InternalError,
    InvalidParameterValue,
    NotFound,
    ResourceAlreadyExists,
    Unauthenticated,
)
from databricks.sdk.service import jobs

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dapi-sandbox"
TERMINAL = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")

# --------------------------------------------------------------------------------------------------
# fixtures


def _git(cwd, *args) -> str:
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e"
    )
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


FILES = {
    "pyproject.toml": """
[project]
name = "mypkg"
version = "0.1.0"
[project.scripts]
mypkg-cli = "mypkg.cli:main"
""",
    "src/mypkg/__init__.py": "",
    "src/mypkg/core.py": "def greet(name):\n    return f'hello {name}'\n",
    "src/mypkg/cli.py": """
import sys
from mypkg.core import greet
from mypkg import util

def main():
    print('WHEEL', sys.argv[1:], greet(util.shout('x')))
    return 0
""",
    "src/mypkg/util.py": "def shout(s):\n    return s.upper()\n",
    "steps/ok.py": """
import os, sys
from mypkg.core import greet
print('OK', sys.argv[1:], greet(os.environ['DATABRICKS_TASK_KEY']), os.environ['DATABRICKS_JOB_RUN_ID'])
os.makedirs('out', exist_ok=True)
with open('out/produced.txt', 'w') as f:
    f.write('payload-' + sys.argv[-1])
""",
    "steps/consume.py": """
print('CONSUMED', open('out/produced.txt').read())
""",
    "steps/fail.py": """
import sys
print('about to fail', flush=True)
sys.exit(1)
""",
    "steps/sleep.py": """
import os, sys, time
with open(sys.argv[1], 'w') as f:
    f.write(str(os.getpid()))
print('sleeping', flush=True)
time.sleep(60)
""",
    "steps/version.py": "print('VERSION', open('VERSION').read().strip())\n",
    "notebooks/nb.py": """# Databricks notebook source
greeting = dbutils.widgets.get('greeting')
env = dbutils.widgets.get('env')
print('NOTEBOOK', greeting, env)

# COMMAND ----------
from dbutils import dbutils as d2
dbutils.notebook.exit(f'{greeting}-{env}-{d2.widgets.get("greeting")}')
""",
    "VERSION": "v1\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A tiny git repo: commit1 (VERSION v1) <- main (VERSION v2); branch feature (VERSION feature)."""
    d = tmp_path_factory.mktemp("gitrepo")
    for name, text in FILES.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.lstrip("\n"))
    _git(d, "init", "-q", "-b", "main")
    _git(d, "add", "-A")
    _git(d, "commit", "-q", "-m", "c1")
    c1 = _git(d, "rev-parse", "HEAD")
    _git(d, "tag", "v1.0")
    (d / "VERSION").write_text("v2\n")
    _git(d, "commit", "-q", "-am", "c2")
    c2 = _git(d, "rev-parse", "HEAD")
    _git(d, "checkout", "-q", "-b", "feature")
    (d / "VERSION").write_text("feature\n")
    _git(d, "commit", "-q", "-am", "feature")
    cf = _git(d, "rev-parse", "HEAD")
    _git(d, "checkout", "-q", "main")
    return {"path": str(d), "c1": c1, "c2": c2, "feature": cf}


class Server:
    def __init__(self, data: Path, log: Path, *extra: str):
        self.data, self.log, self.extra = data, log, extra
        self.start()

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.workspace", "--port", "0", "--data", str(self.data), *self.extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.logf,
            start_new_session=True,
        )
        deadline = time.time() + 20
        line = b""
        while time.time() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        assert line.startswith(b"sandbox workspace listening on http://127.0.0.1:"), (line, self.log.read_text())
        self.url = line.decode().split(" on ", 1)[1].strip()

    def client(self, token=TOKEN) -> WorkspaceClient:
        return WorkspaceClient(config=Config(host=self.url, token=token, auth_type="pat", retry_timeout_seconds=15))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self.proc.stdout.close()
        self.logf.close()

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("ws")
    s = Server(d / "data", d / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def w(server):
    return server.client()


def wait_run(w: WorkspaceClient, run_id: int, timeout: float = 30) -> jobs.Run:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = w.jobs.get_run(run_id)
        if run.state.life_cycle_state.value in TERMINAL:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run.state}")


def task_of(run: jobs.Run, key: str) -> jobs.RunTask:
    return next(t for t in run.tasks if t.task_key == key)


def git_src(repo, **kw) -> jobs.GitSource:
    return jobs.GitSource(git_url=repo["path"], git_provider=jobs.GitProvider.GIT_HUB, **kw)


# Every Python task needs compute, or the workspace refuses the job (as Databricks does): an all-purpose cluster.
CLUSTER = "0123-456789-sandbox"


def py_task(key, file, params=(), deps=(), **kw) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=file, parameters=list(params)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in deps] or None,
        existing_cluster_id=CLUSTER,
        **kw,
    )


# --------------------------------------------------------------------------------------------------
# API surface


def test_auth_required(server):
    req = urllib.request.Request(server.url + "/api/2.2/jobs/list")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 401
    body = json.loads(ei.value.read())
    assert body["error_code"] and body["message"]
    with pytest.raises(Unauthenticated):
        list(server.client(token="wrong").jobs.list())
    # the host's metadata needs no token: databricks-sdk reads it before it signs in (oauth-m2m finds its
    # token endpoint there; tests/sandbox/test_workspace_oauth.py)
    with urllib.request.urlopen(server.url + "/.well-known/databricks-config", timeout=5) as answer:
        assert json.loads(answer.read())["oidc_endpoint"] == server.url + "/oidc"


def test_jobs_crud_list_and_pagination(w, server):
    prefix = f"crud-{time.time_ns()}"
    ids = [w.jobs.create(name=f"{prefix}-{i}", tasks=[py_task("t", "steps/ok.py")]).job_id for i in range(23)]
    assert len(set(ids)) == 23
    listed = [j.job_id for j in w.jobs.list(limit=5) if j.settings.name.startswith(prefix)]
    assert sorted(listed) == sorted(ids)  # SDK followed next_page_token across 5 pages
    first = server.client().api_client.do("GET", "/api/2.2/jobs/list", query={"limit": 5})
    assert len(first["jobs"]) == 5 and first["has_more"] and first["next_page_token"]
    assert "tasks" not in first["jobs"][0]["settings"]
    # exact, case-insensitive name filter
    found = list(w.jobs.list(name=f"{prefix}-7".upper(), expand_tasks=True))
    assert [j.job_id for j in found] == [ids[7]]
    assert found[0].settings.tasks[0].task_key == "t"
    assert list(w.jobs.list(name=f"{prefix}-")) == []
    # get / reset / delete
    job = w.jobs.get(ids[0])
    assert job.settings.name == f"{prefix}-0" and job.creator_user_name
    assert job.settings.tasks[0].spark_python_task.python_file == "steps/ok.py"
    w.jobs.reset(
        ids[0],
        jobs.JobSettings(
            name="renamed",
            max_concurrent_runs=3,
            tasks=[py_task("a", "steps/fail.py"), py_task("b", "x.py", deps=["a"])],
        ),
    )
    job = w.jobs.get(ids[0])
    assert job.settings.name == "renamed" and job.settings.max_concurrent_runs == 3
    assert [t.task_key for t in job.settings.tasks] == ["a", "b"]
    # update: top-level fields replaced, tasks merged by task_key, fields_to_remove honoured
    w.jobs.update(
        ids[0],
        new_settings=jobs.JobSettings(name="updated", tasks=[py_task("b", "y.py", deps=["a"])]),
        fields_to_remove=["max_concurrent_runs"],
    )
    job = w.jobs.get(ids[0])
    assert job.settings.name == "updated" and job.settings.max_concurrent_runs == 1
    assert [(t.task_key, t.spark_python_task.python_file) for t in job.settings.tasks] == [
        ("a", "steps/fail.py"),
        ("b", "y.py"),
    ]
    for jid in ids:
        w.jobs.delete(jid)
    with pytest.raises(NotFound):
        w.jobs.get(ids[0])
    with pytest.raises(InvalidParameterValue):
        list(w.jobs.list(limit=1000))
    with pytest.raises(BadRequest):  # unknown depends_on
        w.jobs.create(name="bad", tasks=[py_task("a", "x.py", deps=["nope"])])


def test_not_found(w):
    with pytest.raises(NotFound):
        w.jobs.get(987654321)
    with pytest.raises(NotFound):
        w.jobs.get_run(987654321)
    with pytest.raises(InvalidParameterValue):
        w.jobs.run_now(987654321)
    with pytest.raises(NotFound):
        w.repos.get(987654321)


# --------------------------------------------------------------------------------------------------
# runs


def test_multi_task_run_success(w, server, repo):
    job_id = w.jobs.create(
        name="multi",
        git_source=git_src(repo, git_branch="main"),
        parameters=[
            jobs.JobParameterDefinition(name="env", default="dev"),
            jobs.JobParameterDefinition(name="other", default="dflt"),
        ],
        tasks=[
            py_task(
                "produce",
                "steps/ok.py",
                ["--env", "{{job.parameters.env}}", "{{job.parameters.other}}", "{{task.name}}", "{{job.run_id}}"],
            ),
            py_task("consume", "steps/consume.py", deps=["produce"]),
        ],
    ).job_id
    run_id = w.jobs.run_now(job_id, job_parameters={"env": "prod"}).run_id
    run = wait_run(w, run_id)
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.state
    assert run.run_name == "multi" and run.job_id == job_id and run.number_in_job == run_id
    assert run.trigger == jobs.TriggerType.ONE_TIME and run.creator_user_name
    assert {p.name: p.value for p in run.job_parameters} == {"env": "prod", "other": "dflt"}
    assert run.git_source.git_snapshot.used_commit == repo["c2"]
    produce, consume = task_of(run, "produce"), task_of(run, "consume")
    assert produce.run_id != consume.run_id != run_id
    assert produce.end_time <= consume.start_time and produce.execution_duration >= 0
    out = w.jobs.get_run_output(produce.run_id)
    assert f"OK ['--env', 'prod', 'dflt', 'produce', '{run_id}'] hello produce {run_id}" in out.logs
    assert out.metadata.tasks[0].task_key == "produce" and not out.error
    assert f"CONSUMED payload-{run_id}" in w.jobs.get_run_output(consume.run_id).logs
    with pytest.raises(InvalidParameterValue):  # output of a multi-task job run itself
        w.jobs.get_run_output(run_id)
    # runs/list and the HTML run page
    listed = list(w.jobs.list_runs(job_id=job_id, completed_only=True))
    assert [r.run_id for r in listed] == [run_id]
    assert run.run_page_url.startswith(server.url + f"/jobs/{job_id}/runs/{run_id}")
    with urllib.request.urlopen(run.run_page_url, timeout=5) as r:
        page = r.read().decode()
    assert "SUCCESS" in page and "produce" in page and "CONSUMED" in page


def test_failed_task_and_upstream_failed(w, repo):
    job_id = w.jobs.create(
        name="failing",
        git_source=git_src(repo, git_branch="main"),
        tasks=[py_task("boom", "steps/fail.py"), py_task("after", "steps/ok.py", deps=["boom"])],
    ).job_id
    run = wait_run(w, w.jobs.run_now(job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert "boom" in run.state.state_message
    boom, after = task_of(run, "boom"), task_of(run, "after")
    assert boom.state.result_state == jobs.RunResultState.FAILED
    assert after.state.result_state == jobs.RunResultState.UPSTREAM_FAILED
    out = w.jobs.get_run_output(boom.run_id)
    assert "about to fail" in out.logs and out.error and "1" in out.error


def test_idempotency_token(w, repo):
    job_id = w.jobs.create(
        name="idem", git_source=git_src(repo, git_branch="main"), tasks=[py_task("t", "steps/ok.py", ["a"])]
    ).job_id
    r1 = w.jobs.run_now(job_id, idempotency_token="tok-1").run_id
    r2 = w.jobs.run_now(job_id, idempotency_token="tok-1").run_id
    assert r1 == r2
    wait_run(w, r1)
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id)] == [r1]
    with pytest.raises(InvalidParameterValue):
        w.jobs.run_now(job_id, idempotency_token="x" * 65)


def test_cancel_kills_process_and_timeouts(w, repo, tmp_path):
    pid_file = tmp_path / "pid"
    src = git_src(repo, git_branch="main")
    cancel_job = w.jobs.create(
        name="cancel",
        git_source=src,
        tasks=[py_task("sleep", "steps/sleep.py", [str(pid_file)]), py_task("never", "steps/ok.py", deps=["sleep"])],
    ).job_id
    task_tmo = w.jobs.create(
        name="task-timeout",
        git_source=src,
        tasks=[py_task("sleep", "steps/sleep.py", [str(tmp_path / "p2")], timeout_seconds=1)],
    ).job_id
    job_tmo = w.jobs.create(
        name="job-timeout",
        git_source=src,
        timeout_seconds=1,
        tasks=[py_task("sleep", "steps/sleep.py", [str(tmp_path / "p3")])],
    ).job_id
    run_id = w.jobs.run_now(cancel_job).run_id
    t_run, j_run = w.jobs.run_now(task_tmo).run_id, w.jobs.run_now(job_tmo).run_id
    deadline = time.time() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert w.jobs.get_run(run_id).state.life_cycle_state == jobs.RunLifeCycleState.RUNNING
    w.jobs.cancel_run(run_id)
    run = wait_run(w, run_id)
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert task_of(run, "sleep").state.result_state == jobs.RunResultState.CANCELED
    assert task_of(run, "never").state.result_state != jobs.RunResultState.SUCCESS
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    for rid in (t_run, j_run):
        run = wait_run(w, rid)
        assert run.state.result_state == jobs.RunResultState.TIMEDOUT, run.state
        assert task_of(run, "sleep").state.result_state == jobs.RunResultState.TIMEDOUT
        assert run.end_time - run.start_time < 10_000


def test_wheel_and_notebook_tasks(w, repo):
    job_id = w.jobs.create(
        name="wheel-nb",
        git_source=git_src(repo, git_tag="v1.0"),
        parameters=[jobs.JobParameterDefinition(name="env", default="dev")],
        tasks=[
            jobs.Task(
                task_key="wheel",
                existing_cluster_id=CLUSTER,
                python_wheel_task=jobs.PythonWheelTask(
                    package_name="mypkg",
                    entry_point="mypkg-cli",
                    named_parameters={"env": "{{job.parameters.env}}", "job": "{{job.id}}"},
                ),
            ),
            jobs.Task(
                task_key="nb",
                notebook_task=jobs.NotebookTask(notebook_path="notebooks/nb", base_parameters={"greeting": "hi"}),
                depends_on=[jobs.TaskDependency(task_key="wheel")],
            ),
        ],
    ).job_id
    run = wait_run(w, w.jobs.run_now(job_id, job_parameters={"env": "stg"}).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [t.state for t in run.tasks]
    assert run.git_source.git_snapshot.used_commit == repo["c1"]
    wheel_out = w.jobs.get_run_output(task_of(run, "wheel").run_id)
    assert f"WHEEL ['--env=stg', '--job={job_id}'] hello X" in wheel_out.logs
    nb_out = w.jobs.get_run_output(task_of(run, "nb").run_id)
    assert nb_out.notebook_output.result == "hi-stg-hi"
    assert nb_out.logs is None  # RunOutput.logs: "It's not supported for the notebook_task"


def test_git_commit_pins_exact_commit(w, repo):
    job_id = w.jobs.create(
        name="pinned", git_source=git_src(repo, git_commit=repo["c1"]), tasks=[py_task("v", "steps/version.py")]
    ).job_id
    run = wait_run(w, w.jobs.run_now(job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.git_source.git_snapshot.used_commit == repo["c1"]
    assert "VERSION v1" in w.jobs.get_run_output(run.tasks[0].run_id).logs
    # and a branch follows its head
    job2 = w.jobs.create(
        name="branch", git_source=git_src(repo, git_branch="feature"), tasks=[py_task("v", "steps/version.py")]
    ).job_id
    run2 = wait_run(w, w.jobs.run_now(job2).run_id)
    assert run2.git_source.git_snapshot.used_commit == repo["feature"]
    assert "VERSION feature" in w.jobs.get_run_output(run2.tasks[0].run_id).logs


def test_max_concurrent_runs_skip_and_queue(w, repo, tmp_path):
    src = git_src(repo, git_branch="main")
    skip_job = w.jobs.create(
        name="skip",
        git_source=src,
        max_concurrent_runs=1,
        tasks=[py_task("s", "steps/sleep.py", [str(tmp_path / "a")], timeout_seconds=1)],
    ).job_id
    r1 = w.jobs.run_now(skip_job).run_id
    r2 = w.jobs.run_now(skip_job).run_id
    assert w.jobs.get_run(r2).state.life_cycle_state == jobs.RunLifeCycleState.SKIPPED
    queue_job = w.jobs.create(
        name="queue",
        git_source=src,
        max_concurrent_runs=1,
        queue=jobs.QueueSettings(enabled=True),
        tasks=[py_task("t", "steps/ok.py", ["q"])],
    ).job_id
    q1, q2 = w.jobs.run_now(queue_job).run_id, w.jobs.run_now(queue_job).run_id
    assert wait_run(w, q1).state.result_state == jobs.RunResultState.SUCCESS
    assert wait_run(w, q2).state.result_state == jobs.RunResultState.SUCCESS
    assert wait_run(w, r1).state.result_state == jobs.RunResultState.TIMEDOUT


# --------------------------------------------------------------------------------------------------
# repos


def test_repos_and_workspace_task(w, repo):
    url = "file://" + repo["path"]
    w.workspace.mkdirs("/Repos/team")  # a Git folder's parent folder must exist (test_workspace_runs.py)
    created = w.repos.create(url=url, provider="gitHub", path="/Repos/team/proj")
    assert created.path == "/Repos/team/proj" and created.branch == "main"
    assert created.head_commit_id == repo["c2"]
    with pytest.raises(ResourceAlreadyExists):
        w.repos.create(url=url, provider="gitHub", path="/Repos/team/proj")
    got = w.repos.get(created.id)
    assert got.url == url and got.head_commit_id == repo["c2"]
    w.repos.update(created.id, branch="feature")
    got = w.repos.get(created.id)
    assert got.branch == "feature" and got.head_commit_id == repo["feature"]
    with pytest.raises(BadRequest):
        w.repos.update(created.id, branch="no-such-branch")
    # a WORKSPACE-source task runs inside the Repo checkout
    job_id = w.jobs.create(
        name="ws-task",
        tasks=[
            jobs.Task(
                task_key="v",
                existing_cluster_id=CLUSTER,
                spark_python_task=jobs.SparkPythonTask(
                    python_file="/Repos/team/proj/steps/version.py", source=jobs.Source.WORKSPACE
                ),
            ),
            jobs.Task(
                task_key="nb",
                depends_on=[jobs.TaskDependency(task_key="v")],
                notebook_task=jobs.NotebookTask(
                    notebook_path="/Repos/team/proj/notebooks/nb",
                    source=jobs.Source.WORKSPACE,
                    base_parameters={"greeting": "yo", "env": "e"},
                ),
            ),
        ],
    ).job_id
    run = wait_run(w, w.jobs.run_now(job_id).run_id)
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [t.state for t in run.tasks]
    assert "VERSION feature" in w.jobs.get_run_output(task_of(run, "v").run_id).logs
    assert w.jobs.get_run_output(task_of(run, "nb").run_id).notebook_output.result == "yo-e-yo"
    # list with prefix + pagination (page size 20)
    w.workspace.mkdirs("/Repos/many")
    extra = [w.repos.create(url=repo["path"], provider="gitHub", path=f"/Repos/many/r{i:02d}").id for i in range(21)]
    assert [r.path for r in w.repos.list(path_prefix="/Repos/team")] == ["/Repos/team/proj"]
    assert len(list(w.repos.list(path_prefix="/Repos/many"))) == 21
    first = w.api_client.do("GET", "/api/2.0/repos", query={"path_prefix": "/Repos/many"})
    assert len(first["repos"]) == 20 and first["next_page_token"]
    for rid in [created.id, *extra]:
        w.repos.delete(rid)
    with pytest.raises(NotFound):
        w.repos.get(created.id)
    assert list(w.repos.list(path_prefix="/Repos/")) == []


# --------------------------------------------------------------------------------------------------
# faults and restart


def test_faults_and_restart(tmp_path, repo):
    s = Server(
        tmp_path / "data",
        tmp_path / "server.log",
        "--fault",
        "POST:/api/2.2/jobs/create=429:2",
        "--fault",
        "POST:/api/2.2/jobs/run-now=500:1",
        "--fault",
        "GET:/api/2.2/jobs/list=delay0.5:1",
    )
    try:
        w = s.client()
        t0 = time.time()
        job_id = w.jobs.create(
            name="faulty",
            git_source=git_src(repo, git_branch="main"),
            tasks=[py_task("s", "steps/sleep.py", [str(tmp_path / "pid")])],
        ).job_id
        assert time.time() - t0 >= 1.5  # two Retry-After: 1 waits
        counts = s.get_json("/sandbox/requests")
        assert counts["POST /api/2.2/jobs/create"] == 3
        with pytest.raises(InternalError):
            w.jobs.run_now(job_id)
        t0 = time.time()
        list(w.jobs.list())
        assert time.time() - t0 >= 0.5
        urllib.request.urlopen(urllib.request.Request(s.url + "/sandbox/requests/reset", method="POST"))
        assert s.get_json("/sandbox/requests") == {}
        run_id = w.jobs.run_now(job_id).run_id
        deadline = time.time() + 20
        while not ((tmp_path / "pid").exists() and (tmp_path / "pid").read_text()) and time.time() < deadline:
            time.sleep(0.05)
    finally:
        s.stop(signal.SIGKILL)  # hard crash: the run stays "RUNNING" on disk
        pid = int((tmp_path / "pid").read_text())
        try:
            os.killpg(pid, signal.SIGKILL)  # the orphaned task process group
        except ProcessLookupError:
            pass
    s.start()
    try:
        w = s.client()
        assert w.jobs.get(job_id).settings.name == "faulty"
        run = w.jobs.get_run(run_id)
        assert run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
        new_job = w.jobs.create(name="after-restart")
        assert new_job.job_id > job_id
    finally:
        s.stop()


def test_save_every_batches_disk_writes_and_a_clean_stop_writes_them(tmp_path):
    """`--save-every 600`: an API write is not on disk at once (a crash may lose it), a clean stop writes it."""
    s = Server(tmp_path / "data", tmp_path / "server.log", "--save-every", "600")
    state = tmp_path / "data" / "state.json"
    try:
        job_id = s.client().jobs.create(name="batched").job_id
        time.sleep(0.5)  # longer than the background saver's own 0.2 s: only --save-every holds the write back
        on_disk = json.loads(state.read_text()) if state.exists() else {}
        assert str(job_id) not in on_disk.get("jobs", {})
    finally:
        s.stop()  # SIGTERM: the server flushes its state on the way out
    assert json.loads(state.read_text())["jobs"][str(job_id)]["settings"]["name"] == "batched"
    s.start()
    try:
        assert s.client().jobs.get(job_id).settings.name == "batched"
    finally:
        s.stop()
