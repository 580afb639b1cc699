"""The one way the stand-ins run `git`: an argument list (never a shell), a clean environment, no prompts."""

from __future__ import annotations

import os
import subprocess


class GitError(RuntimeError):
    def __init__(self, message: str, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Only what git needs: the user's git config and any GIT_* variables around us must not leak in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return {**env, **(extra or {})}


def run_git(
    args: list[str],
    *,
    cwd=None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run `git ARGS` (bytes in, bytes out); raise GitError when it fails and `check` is set."""
    cmd = ["git", "-c", "safe.directory=*", "-c", "advice.detachedHead=false", *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=git_env(env),
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)}: timed out after {timeout}s") from None
    except FileNotFoundError:
        raise GitError("git executable not found") from None
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        detail = stderr.strip() or proc.stdout.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args)} failed: {detail}", proc.returncode, stderr)
    return proc
