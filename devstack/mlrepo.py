"""A tiny ML repository (real git), a bot config for it and a forge seed hosting it, for job tests and benchmarks."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

FILES = {
    "src/tinyml/__init__.py": "",
    "src/tinyml/features.py": "def double(x):\n    return 2 * x\n",
    "src/tinyml/model.py": "from tinyml.features import double\n\ndef fit(n):\n    return sum(double(i) for i in range(n))\n",
    "steps/prepare.py": textwrap.dedent("""\
        import json, os, sys
        from pathlib import Path
        dataset = sys.argv[sys.argv.index("--dataset") + 1]
        work = Path(".mlops-run") / os.environ["DATABRICKS_JOB_RUN_ID"]
        work.mkdir(parents=True, exist_ok=True)
        (work / "rows").write_text({"toy": "10", "full": "1000"}[dataset])
        print(json.dumps({"dataset": dataset, "branch": sys.argv[sys.argv.index("--branch") + 1]}))
        """),
    "steps/train.py": textwrap.dedent("""\
        import json, os, sys, time
        from pathlib import Path
        from tinyml.model import fit
        params = dict(p.split("=", 1) for p in sys.argv[sys.argv.index("--params") + 1].split(",") if p)
        if params.get("sleep"):
            time.sleep(float(params["sleep"]))
        if params.get("fail"):
            print("loss exploded at epoch 3", file=sys.stderr)
            sys.exit(1)
        rows = int((Path(".mlops-run") / os.environ["DATABRICKS_JOB_RUN_ID"] / "rows").read_text())
        print(json.dumps({"metrics": {"score": fit(rows)}, "commit": sys.argv[sys.argv.index("--commit") + 1]}))
        """),
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
        },
    ).stdout.strip()


def write_files(path: Path, files: dict[str, str] | None = None) -> Path:
    """The repository's files (or `files`) under `path`, without git (what the forge imports with `init_from`)."""
    for name, text in (FILES if files is None else files).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def make_repo(path: Path, files: dict[str, str] | None = None, message: str = "tiny ml") -> Path:
    """A git repository at `path` on `main`, holding the repository's files (or `files`) in one commit."""
    write_files(path, files)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", message)
    return path


def branch(repo: Path, name: str) -> str:
    """Create branch `name` with one more commit; returns its sha."""
    git(repo, "checkout", "-q", "-B", name, "main")
    (repo / "NOTES.md").write_text(f"work on {name} at {time.time_ns()}\n")  # a new commit every call
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"work on {name}")
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


def config_text(
    workspace_url: str,
    repo_path: Path | str,
    *,
    code_source: str = "git",
    on_conflict: str = "supersede",
    forge_url: str = "https://api.github.com",
) -> str:
    return textwrap.dedent(f"""\
        [bot]
        job_prefix = "mlops-bot"
        login = "mlops-bot"
        [github]
        base_url = "{forge_url}"
        token_env = "SANDBOX_GITHUB_TOKEN"
        seconds_between_writes = 0
        [permissions]
        train_full_users = ["bob"]
        [environments.dev]
        host = "{workspace_url}"
        token_env = "SANDBOX_DATABRICKS_TOKEN"
        retry_timeout_seconds = 20
        [[repos]]
        name = "acme/tiny-ml"
        git_url = "{repo_path}"
        code_source = "{code_source}"
        git_provider = "gitHub"
        [workflows.train]
        run_on = ["command"]
        datasets = ["toy", "full"]
        params_allowed = ["lr", "sleep", "fail"]
        on_conflict = "{on_conflict}"
        compute = "job_clusters"
        [workflows.train.job_clusters.small]
        node_type_id = "Standard_DS3_v2"
        num_workers = 1
        [[workflows.train.tasks]]
        key = "prepare"
        file = "steps/prepare.py"
        parameters = ["--dataset", "{{dataset}}", "--branch", "{{branch}}"]
        cluster = "small"
        [[workflows.train.tasks]]
        key = "train"
        file = "steps/train.py"
        parameters = ["--params", "{{params}}", "--commit", "{{sha}}"]
        depends_on = ["prepare"]
        cluster = "small"
        [workflows.test]
        run_on = ["pull_request"]
        [workflows.test.environments.default]
        environment_version = "4"
        [[workflows.test.tasks]]
        key = "prepare"
        file = "steps/prepare.py"
        parameters = ["--dataset", "toy", "--branch", "{{branch}}"]
        """)


REPO = "acme/tiny-ml"
BOT = "mlops-bot"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol", "mallory": "ghp_mallory", BOT: "ghp_bot"}


def forge_seed(src: Path, web_url: str, webhook_secret: str) -> str:
    """The sandbox forge's seed: the people of the chat-ops tests and `acme/tiny-ml` from `src`, hooked to the bot."""
    users = "".join(
        f'[users."{login}"]\ntoken = "{token}"\n' + ('type = "Bot"\n' if login == BOT else "")
        for login, token in TOKENS.items()
    )
    return users + textwrap.dedent(f"""\
        [[repos]]
        full_name = "{REPO}"
        init_from = "{src}"
        permissions = {{ alice = "write", bob = "admin", carol = "read", "{BOT}" = "write" }}
        [repos.webhook]
        url = "{web_url}/webhooks/github"
        secret = "{webhook_secret}"
        [teams]
        "acme/ml-leads" = ["bob", "carol"]
        """)
