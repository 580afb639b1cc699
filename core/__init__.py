"""The shared core: what the web process, the handlers and the workers all import — config, the command
table, the Redis layout, events and routing, the Celery app, logs. It imports none of them."""
