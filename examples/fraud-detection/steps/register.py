"""Register the trained model as a new version of NAME, with lineage tags.

    python steps/register.py --model-name NAME [--model card_fraud|ato_risk] [--workdir DIR]
                             [--repo R --branch B --commit SHA --pr N --triggered-by LOGIN]

NAME is an MLflow name (card_fraud) or, with MLFLOW_REGISTRY_URI=databricks-uc, a Unity Catalog name
(dev.fraud.card_fraud). Version tags: repo, branch, commit, pr, job_run_id, triggered_by, mlflow_run_id, model;
the lineage also as run tags. Empty values are not set.
"""

import argparse

import _bootstrap  # noqa: F401
from fraud_detection.cli import add_model_arguments, add_workdir_argument, workdir_of
from fraud_detection.lineage import add_lineage_arguments, lineage_from
from fraud_detection.models import ModelError, select
from fraud_detection.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="register.py", description=__doc__.splitlines()[0])
    add_model_arguments(parser, name_required=True)
    add_workdir_argument(parser)
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    try:
        spec = select(args.model_name, args.model)
    except ModelError as exc:
        parser.error(str(exc))

    def body():
        from fraud_detection.pipeline import register

        result = register(spec, workdir_of(args), args.model_name, lineage=lineage_from(args))
        tags = ", ".join(f"{k}={v}" for k, v in result["tags"].items())
        emit([f"registered {result['model_name']} version {result['version']}", f"version tags: {tags}"], result)

    return run_step("register.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
