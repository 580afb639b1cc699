# Databricks notebook source
# MAGIC %md
# MAGIC # Build features
# MAGIC
# MAGIC The `features` task of the `fit` workflow. Generates the dataset of the model this run trains (the
# MAGIC last part of its registry name: `dev.fraud.card_fraud` is `card_fraud`), engineers that model's
# MAGIC features, splits train and holdout (stratified), and writes the tables the `train` task reads.
# MAGIC
# MAGIC Widgets: `model_name` (the registry name), `dataset` (tiny, toy, full), `workdir`, `seed`.
# MAGIC It exits with one JSON object: what mlops-bot shows of this task.
# MAGIC
# MAGIC Outside Databricks: `python notebooks/build_features.py model_name=card_fraud dataset=toy`.

# COMMAND ----------

import sys
from pathlib import Path

if "__file__" in globals():  # the sandbox workspace and a terminal run it as a file, from where the steps run
    ROOT, HERE = Path(__file__).resolve().parent.parent, Path.cwd()
else:  # on Databricks a notebook from Git runs in its own folder; the steps run from the repository's root
    ROOT = HERE = Path.cwd().parent
sys.path.insert(0, str(ROOT / "src"))

from fraud_detection import DATASET_SIZES, DEFAULT_SEED  # noqa: E402
from fraud_detection.lineage import default_workdir, lineage_from  # noqa: E402
from fraud_detection.models import select  # noqa: E402
from fraud_detection.notebook import LocalDbutils  # noqa: E402
from fraud_detection.pipeline import prepare  # noqa: E402
from fraud_detection.reporting import result_line  # noqa: E402

dbutils = globals().get("dbutils") or LocalDbutils(sys.argv[1:])

# COMMAND ----------

dbutils.widgets.text("model_name", "")
dbutils.widgets.dropdown("dataset", "toy", list(DATASET_SIZES))
dbutils.widgets.text("workdir", "")
dbutils.widgets.text("seed", str(DEFAULT_SEED))

spec = select(dbutils.widgets.get("model_name"))
dataset = dbutils.widgets.get("dataset") or "toy"
workdir = Path(dbutils.widgets.get("workdir") or default_workdir())
workdir = workdir if workdir.is_absolute() else HERE / workdir

# COMMAND ----------

result = prepare(spec, dataset, workdir, seed=int(dbutils.widgets.get("seed") or DEFAULT_SEED), lineage=lineage_from())
print(
    f"{spec.name}: {result['rows']:,} rows of {dataset!r} (seed {result['seed']}), "
    f"{result['train_rows']:,} train / {result['holdout_rows']:,} holdout, positive rate {result['positive_rate']:.1%}"
)

# COMMAND ----------

dbutils.notebook.exit(result_line(result))
