"""Versioning and lifecycle: tag history and restores, immutable tags, quotas, retention and garbage collection."""
