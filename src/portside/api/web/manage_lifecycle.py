"""Lifecycle pages: tag history and restores, immutable tag rules, retention policies, quotas.

Every read and change is a call to the lifecycle services in :mod:`portside.lifecycle` (the same
ones the ``/api/v1`` lifecycle endpoints and the CLI use), so a page refuses exactly what the
API refuses, with the same message. Pages here only choose what to show.

* ``/r/NAME/-/history`` and ``/r/NAME/-/history/TAG``: history [pull]; restore buttons [push].
* ``/r/NAME/-/restore`` (POST): point a tag back at a digest in its window [push].
* ``/n/NAMESPACE/-/settings``: the namespace's quota, immutable rules and retention policies
  [namespace admins].
* The rule and policy forms of the repository settings and the admin area post to actions
  built by :func:`lifecycle_actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.api.web import form_values as fields
from portside.api.web.formatting import namespace_path, repository_path
from portside.api.web.manage_common import (
    FRESH,
    FormAction,
    FormState,
    action_post,
    action_retry,
    path_part,
    render,
    see_other,
    signed_in_action,
    signed_in_page,
)
from portside.api.web.pages import PageError, current_viewer, namespace_param, page, require_pull, web_of
from portside.auth.management.guards import Caller
from portside.auth.policy import may_administer_namespace
from portside.auth.roles import actions_for
from portside.auth.web_sessions import safe_next
from portside.lifecycle.history import HistoryView
from portside.lifecycle.quotas import QuotaInfo
from portside.lifecycle.retention import PolicyInput
from portside.lifecycle.retention_policy import Policy
from portside.metadata.tag_changes import TagHistoryEntry
from portside.notifications.events import EventAction
from portside.oci.errors import ErrorKind, RegistryError

HISTORY = "/-/history"
HISTORY_LIMIT = 200
# The repository page looks this far back for deleted tags (the store's upper bound).
DELETED_SCAN = 1000
NAMESPACE_SETTINGS = "/-/settings"
RULE_FIELDS = ("pattern",)
POLICY_FIELDS = (
    "policy_scope_kind",
    "policy_scope",
    "tag_pattern",
    "keep_last",
    "delete_older_than_days",
    "untagged_after_days",
    "keep_pulled_within_days",
)
RUN_TEMPLATE = "manage/retention_run.html"
# What the webhook form of the namespace settings offers: every event, or chosen event types.
WEBHOOK_EVENTS = ["*", *(action.value for action in EventAction)]

ScopeKind = Literal["repository", "namespace"]


def history_path(name: str, tag: str | None = None) -> str:
    """A repository's history page, or one tag's."""
    return repository_path(name) + HISTORY + (f"/{path_part(tag)}" if tag else "")


def namespace_settings_path(namespace: str) -> str:
    """A namespace's lifecycle settings page."""
    return namespace_path(namespace) + NAMESPACE_SETTINGS


# History


@dataclass(frozen=True)
class HistoryRow:
    """One change as shown, with the digests a restore button is offered for on its row."""

    entry: TagHistoryEntry
    restore_to: list[str]


@dataclass(frozen=True)
class DeletedTag:
    """A tag whose latest change deleted it, still restorable to the digest it had."""

    tag: str
    digest: str
    deleted_at: datetime
    actor: str | None


def current_digests(entries: list[TagHistoryEntry]) -> dict[str, str | None]:
    """Each tag's digest after its newest change in ``entries`` (newest first); None if deleted."""
    current: dict[str, str | None] = {}
    for entry in entries:
        current.setdefault(entry.tag, None if entry.action == "deleted" else entry.new_digest)
    return current


def history_rows(view: HistoryView) -> list[HistoryRow]:
    """Rows for a history table: a digest is offered once per tag, on its newest row in the window,
    and never the digest the tag points at now (the service decides whether a restore is allowed)."""
    current = current_digests(view.entries)
    offered: set[tuple[str, str]] = set()
    rows = []
    for entry in view.entries:
        restore_to = []
        if entry.recorded_at >= view.window_start:
            for digest in (entry.new_digest, entry.old_digest):
                key = (entry.tag, digest or "")
                if digest and digest in view.restorable and digest != current[entry.tag] and key not in offered:
                    offered.add(key)
                    restore_to.append(digest)
        rows.append(HistoryRow(entry, restore_to))
    return rows


def deleted_tags(view: HistoryView) -> list[DeletedTag]:
    """Tags deleted within the window that have not come back: what a restore may bring back."""
    seen: set[str] = set()
    deleted = []
    for entry in view.entries:
        if entry.tag in seen:
            continue
        seen.add(entry.tag)
        if entry.action == "deleted" and entry.old_digest and entry.recorded_at >= view.window_start:
            deleted.append(DeletedTag(entry.tag, entry.old_digest, entry.recorded_at, entry.actor))
    return deleted


async def may_push(request: Request, name: str) -> bool:
    """Whether to show restore buttons: a signed-in viewer the policy lets push (the service checks again)."""
    viewer = await current_viewer(request)
    if not viewer.signed_in:
        return False
    role = await web_of(request).registry.accounts.role_on(viewer.principal, name)
    return "push" in actions_for(role)


async def repository_history(request: Request, name: str, tag: str | None, limit: int) -> HistoryView:
    """History the viewer may read (404 like a missing repository otherwise)."""
    await require_pull(request, name)
    try:
        return await web_of(request).registry.history.history_of(name, tag, limit)
    except RegistryError as exc:
        if exc.status in (400, 404):
            raise PageError(404, f"There is no repository {name!r}, or you may not see it.") from exc
        raise


async def recently_deleted(request: Request, name: str) -> list[DeletedTag]:
    """Deleted tags a pusher may still restore, for the repository page (empty for others)."""
    if not await may_push(request, name):
        return []
    return deleted_tags(await repository_history(request, name, None, DELETED_SCAN))


async def history_view(
    request: Request, name: str, tag: str | None, *, error: str | None = None, status: int = 200
) -> Response:
    """The history table of a repository or a tag, with restore buttons for pushers."""
    view = await repository_history(request, name, tag, HISTORY_LIMIT)
    pusher = await may_push(request, name)
    context = {
        "name": name,
        "tag": tag,
        "rows": history_rows(view),
        "deleted": deleted_tags(view) if tag is None else [],
        "window_start": view.window_start,
        "window_days": web_of(request).registry.history.window.days,
        "may_push": pusher,
        "restore_action": repository_path(name) + "/-/restore",
        "error": error,
        "error_section": "restore",
    }
    return await render(request, "manage/history.html", context, status)


async def history_page(request: Request) -> Response:
    """GET /r/{name}/-/history[/{tag}]."""
    return await history_view(request, request.path_params["name"], request.path_params.get("tag"))


async def restore(request: Request, caller: Caller, form: FormData) -> Response:
    """POST /r/{name}/-/restore: ``tag`` back to ``digest``; then that tag's history."""
    name = request.path_params["name"]
    tag = fields.required(form, "tag", "the tag")
    digest = fields.required(form, "digest", "the digest")
    restored = await web_of(request).registry.history.restore(caller, name, tag, digest)
    return see_other(history_path(name, restored.tag), "tag-restored" if restored.changed else "tag-unchanged")


async def restore_retry(request: Request, caller: Caller, form: FormData, error: RegistryError) -> Response:
    """The history page again (the tag's, if it is a valid one), with the refusal."""
    name = request.path_params["name"]
    tag = fields.text(form, "tag") or None
    try:
        return await history_view(request, name, tag, error=error.message, status=error.status)
    except PageError:
        return await history_view(request, name, None, error=error.message, status=error.status)


# Immutable rules and retention policies: the same forms on three pages


def policy_from(form: FormData, scope_kind: str, scope: str) -> PolicyInput:
    """A retention policy from its form (durations in whole days); ``REQUEST_INVALID`` if empty or bad."""
    try:
        policy = Policy(
            tag_pattern=fields.text(form, "tag_pattern") or "*",
            keep_last=fields.whole_number(form, "keep_last", "Keep the last"),
            delete_older_than=fields.days(form, "delete_older_than_days", "Delete tags older than"),
            untagged_after=fields.days(form, "untagged_after_days", "Delete untagged manifests after"),
            keep_pulled_within=fields.days(form, "keep_pulled_within_days", "Keep anything pulled within"),
        )
    except ValueError as exc:
        raise RegistryError(ErrorKind.REQUEST_INVALID, str(exc)) from exc
    return PolicyInput(scope_kind, scope, policy)


def scope_kind_of(value: str) -> ScopeKind:
    """``repository`` or ``namespace`` from a form."""
    if value == "repository":
        return "repository"
    if value == "namespace":
        return "namespace"
    raise RegistryError(ErrorKind.REQUEST_INVALID, "choose whether the scope is a repository or a namespace")


Scope = Callable[[Request, FormData], tuple[ScopeKind, str]]


def lifecycle_actions(scope: Scope) -> dict[str, tuple[FormAction, str]]:
    """Rule and policy actions for a page whose scope ``scope`` reads from the request (or form).

    Each answers a notice code for the redirect, or (a retention run) the page showing the run.
    The second item names the page section where a refusal is shown.
    """

    async def add_rule(request: Request, caller: Caller, form: FormData) -> str | Response:
        kind, name = scope(request, form)
        pattern = fields.required(form, "pattern", "a pattern")
        await web_of(request).registry.immutability.add_rule(caller, kind, name, pattern)
        return "rule-added"

    async def remove_rule(request: Request, caller: Caller, form: FormData) -> str | Response:
        rule = fields.identifier(fields.text(form, "rule"), "immutable rule")
        await web_of(request).registry.immutability.remove_rule(caller, rule)
        return "rule-removed"

    async def add_policy(request: Request, caller: Caller, form: FormData) -> str | Response:
        kind, name = scope(request, form)
        await web_of(request).registry.retention.add_policy(caller, policy_from(form, kind, name))
        return "policy-added"

    async def remove_policy(request: Request, caller: Caller, form: FormData) -> str | Response:
        policy = fields.identifier(fields.text(form, "policy"), "retention policy")
        await web_of(request).registry.retention.remove_policy(caller, policy)
        return "policy-removed"

    async def run_retention(request: Request, caller: Caller, form: FormData) -> str | Response:
        # A run answers with its own page, like a token shown once: a dry run's list is the
        # point of the request, and only site admins may read the run log afterwards.
        raw = fields.text(form, "policy")
        policy = fields.identifier(raw, "retention policy") if raw else None
        dry_run = fields.checkbox(form, "dry_run")
        run = await web_of(request).registry.retention.run_for(caller, dry_run=dry_run, policy_id=policy)
        context = {"run": run, "back": safe_next(fields.text(form, "back"))}
        return await render(request, RUN_TEMPLATE, context)

    return {
        "add-rule": (add_rule, "rules"),
        "remove-rule": (remove_rule, "rules"),
        "add-policy": (add_policy, "retention"),
        "remove-policy": (remove_policy, "retention"),
        "run-retention": (run_retention, "retention"),
    }


# Namespace settings


async def visible_quota(request: Request, caller: Caller, namespace: str) -> QuotaInfo | None:
    """The namespace's quota and usage if the caller may see it (the service decides), else None."""
    try:
        return await web_of(request).registry.quotas.show(caller, namespace)
    except RegistryError:
        return None


async def namespace_settings_view(
    request: Request,
    caller: Caller,
    state: FormState = FRESH,
    *,
    chosen_events: list[str] | None = None,
) -> Response:
    """Quota, immutable rules, retention policies and webhooks of a namespace [its admins]."""
    namespace = namespace_param(request)
    registry = web_of(request).registry
    # The rule service checks for a namespace admin first (403 for anyone else).
    rules = await registry.immutability.list_rules(caller, namespace=namespace)
    policies = await registry.retention.list_policies(caller, "namespace", namespace)
    webhooks = await registry.notifier.list_for(caller, namespace)
    base = namespace_settings_path(namespace)
    context = {
        "namespace": namespace,
        "quota": await visible_quota(request, caller, namespace),
        "rules": rules,
        "policies": policies,
        "webhooks": webhooks,
        "webhook_events": WEBHOOK_EVENTS,
        "chosen_events": chosen_events or ["*"],
        "webhooks_base": namespace_path(namespace) + "/-/webhooks",
        "base": base,
        "rule_scope_kind": "namespace",
        "error": state.error,
        "error_section": state.section,
        "values": state.values,
    }
    return await render(request, "manage/namespace_settings.html", context, state.status)


def _namespace_scope(request: Request, form: FormData) -> tuple[ScopeKind, str]:
    return "namespace", namespace_param(request)


NAMESPACE_ACTIONS = lifecycle_actions(_namespace_scope)


async def namespace_admin(request: Request, namespace: str) -> bool:
    """Whether the viewer administers ``namespace`` (to link its settings; the pages check again)."""
    viewer = await current_viewer(request)
    return viewer.signed_in and may_administer_namespace(viewer.principal, namespace)


def lifecycle_routes() -> list[BaseRoute]:
    """History, restores and namespace settings; before the browsing pages' ``/r/...`` route."""
    repository = "/r/{name:path}"
    namespace = "/n/{namespace}" + NAMESPACE_SETTINGS
    return [
        Route(repository + HISTORY, page(history_page), methods=["GET"]),
        Route(repository + HISTORY + "/{tag}", page(history_page), methods=["GET"]),
        Route(repository + "/-/restore", signed_in_action(restore, restore_retry), methods=["POST"]),
        Route(namespace, signed_in_page(namespace_settings_view), methods=["GET"]),
        Route(
            namespace + "/{action}",
            signed_in_action(
                action_post(
                    NAMESPACE_ACTIONS,
                    lambda request: namespace_settings_path(namespace_param(request)),
                    "no such setting",
                ),
                action_retry(namespace_settings_view, NAMESPACE_ACTIONS, *RULE_FIELDS, *POLICY_FIELDS),
            ),
            methods=["POST"],
        ),
    ]
