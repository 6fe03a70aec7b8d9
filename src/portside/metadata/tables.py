"""The metadata schema. Alembic migrations under ``migrations/`` create and evolve it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("visibility", String(16), nullable=False, server_default="private"),
    Column("description", Text, nullable=True),
)

# One row per committed blob, whatever the number of repositories that link it.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(200), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A repository may read a blob only through a link (made by a push or a mount).
repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(200), ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

manifests = Table(
    "manifests",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(200), primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", String(200), nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)

# Every blob and child manifest a manifest references: for validation, GC and deletes.
manifest_references = Table(
    "manifest_references",
    metadata,
    Column("repository_id", Integer, primary_key=True),
    Column("manifest_digest", String(200), primary_key=True),
    Column("target_digest", String(200), primary_key=True),
    Column("kind", String(16), nullable=False),
    Index("ix_manifest_references_target", "target_digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tags_digest", "repository_id", "digest"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_uploads_updated_at", "updated_at"),
)

# Access control (migration 0002)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("email", String(255), nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

organization_members = Table(
    "organization_members",
    metadata,
    Column("organization_id", Integer, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("is_owner", Boolean, nullable=False, default=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organization_id", Integer, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    UniqueConstraint("organization_id", "name"),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

# A robot belongs to a namespace (a user's or an organization's) and is named "<namespace>+<name>".
robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace", "name"),
)

# Personal access tokens and robot tokens; only a hash of the secret is kept.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(128), nullable=False, unique=True),
    Column("max_role", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

# What a user, team or robot may do on a repository or on every repository of a namespace.
grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_kind", String(8), nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    UniqueConstraint("subject_kind", "subject_id", "target_kind", "target"),
    Index("ix_grants_target", "target_kind", "target"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(160), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(400), nullable=True),
    Column("address", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_actor", "actor"),
)

# Failed logins counted per key ("user:<name>" or "addr:<ip>") within a window.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
)

# Every run of a background job: which node ran it and how it went (migration 0003).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("node", String(200), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text, nullable=False),
    Index("ix_job_runs_job_started", "job", "started_at"),
)

# Webhooks, their delivery outbox, and registry-wide flags such as read-only mode (migration 0010_webhooks).

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),
    # Comma-separated event actions the endpoint wants ("push,pull,..."); "*" for all.
    Column("events", String(400), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_endpoints_namespace", "namespace"),
)

# The outbox: one row per (event, endpoint), kept as the delivery log once sent or given up.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)

# Registry-wide runtime flags every worker and node reads (e.g. "read_only").
registry_flags = Table(
    "registry_flags",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- 0008_proxy: the pull-through cache (portside.proxy) ---

# Repositories filled from an upstream registry (as opposed to pushed here).
proxy_repositories = Table(
    "proxy_repositories",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("upstream", String(2000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# When each cached tag was last confirmed against the upstream (its TTL runs from here).
proxy_tags = Table(
    "proxy_tags",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("digest", String(200), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

# --- 0009_ratelimits: pull rate limits (registry/ratelimits.py) ---

# Pulls counted per subject ("user:alice", "address:192.0.2.7") in each fixed window.
pull_counters = Table(
    "pull_counters",
    metadata,
    Column("subject", String(300), primary_key=True),
    Column("window_start", BigInteger, primary_key=True, autoincrement=False),
    Column("pulls", Integer, nullable=False),
    Index("ix_pull_counters_window_start", "window_start"),
)
