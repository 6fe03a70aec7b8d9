"""The ``/v2/`` route table as data, and the one pure function that matches a path against it.

Repository names contain ``/``, so a path is matched from its end: the suffix names the
endpoint and everything between ``/v2/`` and the suffix is the repository name.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum


class Endpoint(Enum):
    """Every endpoint of the distribution API."""

    BASE = "base"
    CATALOG = "catalog"
    TAGS = "tags"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOADS = "uploads"
    UPLOAD = "upload"
    REFERRERS = "referrers"


@dataclass(frozen=True)
class RouteSpec:
    """One row of the route table."""

    endpoint: Endpoint
    methods: frozenset[str]
    pattern: re.Pattern[str]
    template: str


def _route(endpoint: Endpoint, methods: str, pattern: str, template: str) -> RouteSpec:
    return RouteSpec(endpoint, frozenset(methods.split()), re.compile(pattern), template)


ROUTES: tuple[RouteSpec, ...] = (
    _route(Endpoint.BASE, "GET HEAD", r"^/v2/?\Z", "/v2/"),
    _route(Endpoint.CATALOG, "GET", r"^/v2/_catalog\Z", "/v2/_catalog"),
    _route(Endpoint.TAGS, "GET", r"^/v2/(?P<name>.+)/tags/list\Z", "/v2/<name>/tags/list"),
    _route(
        Endpoint.MANIFEST,
        "GET HEAD PUT DELETE",
        r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$",
        "/v2/<name>/manifests/<reference>",
    ),
    _route(Endpoint.UPLOADS, "POST", r"^/v2/(?P<name>.+)/blobs/uploads/?\Z", "/v2/<name>/blobs/uploads/"),
    _route(
        Endpoint.UPLOAD,
        "GET PATCH PUT DELETE",
        r"^/v2/(?P<name>.+)/blobs/uploads/(?P<ref>[^/]+)$",
        "/v2/<name>/blobs/uploads/<uuid>",
    ),
    _route(Endpoint.BLOB, "GET HEAD DELETE", r"^/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)\Z", "/v2/<name>/blobs/<digest>"),
    _route(Endpoint.REFERRERS, "GET", r"^/v2/(?P<name>.+)/referrers/(?P<ref>[^/]+)\Z", "/v2/<name>/referrers/<digest>"),
)


@dataclass(frozen=True)
class RouteMatch:
    """A matched path: which endpoint, for which repository and reference."""

    route: RouteSpec
    name: str
    reference: str


@functools.lru_cache(maxsize=4096)
def match_v2_path(path: str) -> RouteMatch | None:
    """The first route whose pattern matches ``path`` (the upload routes come before the blob route)."""
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            groups = found.groupdict()
            return RouteMatch(route, groups.get("name") or "", groups.get("ref") or "")
    return None
