"""Run the project's own tests with pytest.

    python steps/run_tests.py [unit|integration|all]    (default: all)

Exit code is pytest's. The last line is a JSON summary (tests, failures, errors, skipped).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = {"unit": ["tests/unit"], "integration": ["tests/integration"], "all": ["tests/unit", "tests/integration"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="run_tests.py", description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default="all", type=lambda v: v.strip() or "all", choices=list(SUITES))
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            *SUITES[args.suite],
            *args.pytest_args,
        ]
        print("+ " + " ".join(command[2:]), flush=True)
        code = subprocess.call(command, cwd=ROOT)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if junit.exists():
            root = ET.parse(junit).getroot()
            for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    print(
        f"{args.suite} tests: {passed} passed, {counts['failures']} failed, "
        f"{counts['errors']} errors, {counts['skipped']} skipped (pytest exit code {code})"
    )
    print(
        json.dumps({"suite": args.suite, "exit_code": code, "passed": code == 0, **counts}, sort_keys=True), flush=True
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
