"""Stand-in deployment: point alias <environment> at a model version.

    python steps/deploy.py --model-name NAME --version V --environment dev|staging|prod

Sets the registered model's alias <environment> to V and the version tag deployed_<environment>_at.
"""

import argparse

import _bootstrap  # noqa: F401
from fraud_detection import ENVIRONMENTS
from fraud_detection.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--version", required=True, help="version number or alias (e.g. champion)")
    parser.add_argument("--environment", required=True, choices=list(ENVIRONMENTS))
    args = parser.parse_args(argv)

    def body():
        from fraud_detection.pipeline import deploy

        result = deploy(args.model_name, args.version, args.environment)
        was = f", was version {result['previous_version']}" if result["previous_version"] else ""
        emit([f"deployed {result['model']} version {result['version']} to {result['environment']}{was}"], result)

    return run_step("deploy.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
