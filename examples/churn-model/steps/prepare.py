"""Generate the dataset and write the feature tables.

    python steps/prepare.py --dataset toy|full [--workdir DIR] [--seed N] [--holdout-fraction F]

Writes DIR/data/train.csv, DIR/data/holdout.csv and DIR/prepare.json. Lineage options
(--repo, --branch, --commit, --pr, --triggered-by) are accepted here too and carried on
to the later steps through prepare.json.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model.data import DATASET_SIZES, DEFAULT_SEED
from churn_model.lineage import add_lineage_arguments, default_workdir, lineage_from
from churn_model.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="prepare.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=list(DATASET_SIZES),
        default="toy",
        help="toy ≈ 2,000 rows, full ≈ 50,000 rows (tiny: 400, for tests)",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="work directory shared by the steps of a job run (default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--holdout-fraction", type=float, default=0.2)
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    workdir = args.workdir or str(default_workdir())

    def body():
        from churn_model.pipeline import prepare

        result = prepare(
            args.dataset, workdir, seed=args.seed, holdout_fraction=args.holdout_fraction, lineage=lineage_from(args)
        )
        emit(
            [
                f"prepared dataset {result['dataset']!r} (seed {result['seed']}): {result['rows']} rows, "
                f"{result['train_rows']} train / {result['holdout_rows']} holdout, "
                f"churn rate {result['churn_rate']:.1%}",
                f"feature tables in {workdir}/data",
            ],
            result,
        )

    return run_step("prepare.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
