"""Webhook notifications: registry events sent to per-namespace endpoints in Distribution's envelope.

* :mod:`.events`: the event types and the envelope, signature and backoff (pure).
* :mod:`.service`: :class:`~.service.Notifier`, which turns events into outbox rows, and the
  management of endpoints and their delivery log.
* :mod:`.delivery`: the background job that sends due deliveries with retries and backoff.
"""
