"""Metrics for every process.

Stages report numbers through `monitoring.hook` (no-op until a process
installs an exporter); only this package imports prometheus_client.
"""
