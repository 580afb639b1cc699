"""Stand-in deployment: point alias <environment> at a model version.

    python steps/deploy.py --model-name NAME --version V --environment dev|staging|prod

NAME is an MLflow name (churn-model) or a Unity Catalog one (prod.ml.churn, with
MLFLOW_REGISTRY_URI=databricks-uc). Sets registered-model alias <environment> -> V and
version tag deployed_<environment>_at.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import ENVIRONMENTS, MODEL_NAME
from churn_model.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--version", required=True, help="version number or alias (e.g. champion)")
    parser.add_argument("--environment", required=True, choices=list(ENVIRONMENTS))
    args = parser.parse_args(argv)

    def body():
        from churn_model.pipeline import deploy

        result = deploy(args.model_name, args.version, args.environment)
        previous = result["previous_version"]
        emit(
            [
                f"deployed {result['model']} version {result['version']} to {result['environment']} "
                f"(alias @{result['alias']}" + (f", was version {previous})" if previous else ")"),
            ],
            result,
        )

    return run_step("deploy.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
