"""The Procfile is the one source of the bot's process command lines; the dev wing reads it too."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack import ROOT

PROCFILE = ROOT / "Procfile"
# `${NAME:-default}`, `${NAME}` and `$NAME`, as the shell a platform runs the Procfile with expands them
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def entries(path: Path = PROCFILE) -> dict[str, str]:
    """Process type → command line, as written."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            found[name.strip()] = command.strip()
    return found


def command(process: str, env: Mapping[str, str], path: Path = PROCFILE) -> list[str]:
    """The argv of Procfile entry `process` with its variables filled from `env`.

    `mlops-bot` runs as `python -m bot` under this interpreter, so it works without the console
    script on PATH.
    """
    line = entries(path)[process]
    expanded = VARIABLE.sub(lambda m: env.get(m[1] or m[3]) or m[2] or "", line)
    argv = shlex.split(expanded)
    if argv[0] == "mlops-bot":
        argv = [sys.executable, "-m", "bot", *argv[1:]]
    return argv
