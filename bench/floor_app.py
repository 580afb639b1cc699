"""The floor for bench/ingest.py: the same gunicorn setup serving an endpoint that only reads the body.

Whatever the receiver costs on top of this is the receiver's own work (signature, JSON, routing,
Redis); what this costs is Flask + gunicorn + the load generator on the same machine.
"""

from __future__ import annotations

from flask import Flask, request


def create_app() -> Flask:
    app = Flask("mlops-bot-floor")

    @app.post("/webhooks/github")
    def webhook():
        request.get_data(cache=False)
        return "", 204

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
