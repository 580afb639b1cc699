"""Arguments every step shares: which model, where the job run's files are."""

from __future__ import annotations

import argparse
from pathlib import Path

from fraud_detection import DATASET_SIZES, VALIDATION_DATASET
from fraud_detection.lineage import default_workdir
from fraud_detection.models import MODELS


def add_model_arguments(parser: argparse.ArgumentParser, *, name_required: bool = False) -> None:
    parser.add_argument(
        "--model-name",
        required=name_required,
        default="",
        help="registry name (dev.fraud.card_fraud, or an MLflow name such as card_fraud); its last part names the model",
    )
    parser.add_argument("--model", default="", choices=["", *MODELS], help="the model, when --model-name does not say")


def add_workdir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        default="",
        help="shared by the tasks of a job run (default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>)",
    )


def workdir_of(args: argparse.Namespace) -> Path:
    return Path(args.workdir) if args.workdir else default_workdir()


def validation_dataset(value: str) -> str:
    """`--dataset`: the bot passes {dataset}, which may be empty (the default size)."""
    value = value.strip() or VALIDATION_DATASET
    if value not in DATASET_SIZES:
        raise argparse.ArgumentTypeError(f"unknown dataset {value!r} (known: {', '.join(DATASET_SIZES)})")
    return value
