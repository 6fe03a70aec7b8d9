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
    # When a commit or mount last claimed the blob (migration 0005_retention); GC spares it within the grace.
    Column("touched_at", DateTime(timezone=True), nullable=True),
)

# The bytes of small blobs pushed whole in one request, kept here instead of in blob storage: one
# log fsync instead of a new file and its fsyncs (docs/architecture.md, "Small blobs"). They go
# with their blob's row.
blob_contents = Table(
    "blob_contents",
    metadata,
    Column("digest", String(200), ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True),
    Column("content", LargeBinary, nullable=False),
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
    # When the manifest was last pushed (migration 0005_retention); GC's grace counts from it.
    Column("touched_at", DateTime(timezone=True), nullable=True),
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
    # Set when the session is finished or cancelled (migration 0013): the row stays until it
    # expires, so that the session's signed id is not taken for an open, empty one.
    Column("closed_at", DateTime(timezone=True), nullable=True),
    # The bytes of a small first PATCH, kept here instead of in a file (migration 0014). A file of
    # the session that holds at least as many bytes supersedes them; closing the session clears them.
    Column("first_chunk", LargeBinary, nullable=True),
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

# Lifecycle (migration 0004_lifecycle)

# Every change of a tag: created, moved, deleted or restored, by whom and when.
tag_history = Table(
    "tag_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("old_digest", String(200), nullable=True),
    Column("new_digest", String(200), nullable=True),
    Column("action", String(16), nullable=False),
    Column("actor", String(255), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_tag_history_repo_tag_at", "repository_id", "tag", "recorded_at"),
    Index("ix_tag_history_at", "recorded_at"),
)

# Tags matching ``pattern`` (a glob) in a repository or in every repository of a namespace
# may be created but never moved or deleted.
immutable_rules = Table(
    "immutable_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope_kind", String(16), nullable=False),
    Column("scope", String(255), nullable=False),
    Column("pattern", String(128), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("scope_kind", "scope", "pattern", name="uq_immutable_rules_scope_pattern"),
)

# Storage quota of a namespace (the first path component of its repositories' names).
namespace_quotas = Table(
    "namespace_quotas",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("limit_bytes", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Retention and garbage collection (migration 0005_retention)

# When a manifest was last pulled, flushed from an in-memory buffer every few seconds.
manifest_pulls = Table(
    "manifest_pulls",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(200), primary_key=True),
    Column("last_pulled_at", DateTime(timezone=True), nullable=False),
)

# A retention policy for a repository or every repository of a namespace; durations in seconds.
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope_kind", String(16), nullable=False),
    Column("scope", String(255), nullable=False),
    Column("tag_pattern", String(128), nullable=False),
    Column("keep_last", Integer, nullable=True),
    Column("delete_older_than_seconds", BigInteger, nullable=True),
    Column("untagged_after_seconds", BigInteger, nullable=True),
    Column("keep_pulled_within_seconds", BigInteger, nullable=True),
    Column("created_by", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_retention_policies_scope", "scope_kind", "scope"),
)

# Every retention run and what it removed (a JSON list).
retention_runs = Table(
    "retention_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("dry_run", Boolean, nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("actor", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("removed", Text, nullable=False),
    Column("error", Text, nullable=True),
)

# Every garbage collection run: its progress while it runs, what it freed when done.
gc_runs = Table(
    "gc_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node", String(200), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("actor", String(255), nullable=True),
    Column("dry_run", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("phase", String(32), nullable=False),
    Column("repositories_total", Integer, nullable=False),
    Column("repositories_done", Integer, nullable=False),
    Column("manifests_removed", Integer, nullable=False),
    Column("links_removed", Integer, nullable=False),
    Column("blobs_removed", Integer, nullable=False),
    Column("bytes_freed", BigInteger, nullable=False),
    Column("detail", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_gc_runs_started", "started_at"),
)

# Search and repository metadata (migration 0006_search). The repositories table also gains
# `readme`, `pull_count` and `last_pushed_at` there; on SQLite the full-text index is the FTS5
# virtual table `search_fts` (rowid = repository id), on PostgreSQL the `document` tsvector of
# `search_documents` with a GIN index. Both are reached only through text() in search_store.py.

repository_readme = Column("readme", Text, nullable=True)
repository_pull_count = Column("pull_count", BigInteger, nullable=False, server_default="0")
repository_star_count = Column("star_count", Integer, nullable=False, server_default="0")
repository_last_pushed_at = Column("last_pushed_at", DateTime(timezone=True), nullable=True)
repositories.append_column(repository_readme)
repositories.append_column(repository_pull_count)
repositories.append_column(repository_star_count)
repositories.append_column(repository_last_pushed_at)

# Who starred which repository.
repository_stars = Table(
    "repository_stars",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_repository_stars_user", "user_id"),
)

# What each manifest says about itself, read once at push: kind is "label" (image config
# Labels), "annotation", "artifact_type" or "platform" (value "os/arch[/variant]").
manifest_facets = Table(
    "manifest_facets",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("manifest_digest", String(200), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

# The facets of each repository's live content (tagged manifests and the children of tagged
# indexes), recomputed when tags change; the search filters match exactly against these.
search_facets = Table(
    "search_facets",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", String(512), primary_key=True),
    Index("ix_search_facets_lookup", "kind", "key", "value"),
)

# One search document per repository; what the full-text index is built from.
search_documents = Table(
    "search_documents",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("short_name", String(255), nullable=False),
    Column("name_terms", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Web UI sessions (migration 0007_web): the id is the SHA-256 of the cookie's secret.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("address", String(64), nullable=True),
    Index("ix_web_sessions_user", "user_id"),
    Index("ix_web_sessions_expires", "expires_at"),
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
