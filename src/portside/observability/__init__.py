"""Observability: Prometheus metrics, health checks, structured request logs with request ids."""
