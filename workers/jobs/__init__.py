"""Per-branch Databricks jobs: their settings and compute, upsert and clean-up, and a run's result."""
