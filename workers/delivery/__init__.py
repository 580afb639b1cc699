"""Deliveries that never arrived: the reconciler (PR commands) and GitHub App redelivery."""
