"""Monitoring: what the operator's Prometheus scrapes beyond each process's own counters."""
