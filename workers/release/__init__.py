"""The release train: staging training and validation, four-eyes approval (PR or Slack), promotion into
prod, deploy and rollback, and polling of registries without webhooks."""
