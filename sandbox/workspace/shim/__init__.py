"""Modules put on every sandbox task's PYTHONPATH (``dbutils`` and the task entry runner).

This directory itself is added to PYTHONPATH, so ``import dbutils`` works in tasks.
"""
