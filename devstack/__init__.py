"""The dev wing: local processes, named setups, the demo and the test ML repository.

Used by `make demo`, the tests and the benchmarks, from the repository root; never shipped in the
wheel and never imported by the bot (`bot/`, `handlers/`, `workers/`).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
