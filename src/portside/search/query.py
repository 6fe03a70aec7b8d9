"""Search queries: what a caller asks for, parsed and checked. Pure: no I/O.

A query string holds free text and, optionally, qualifiers that act as exact filters::

    nginx proxy namespace:acme label:maintainer=ops annotation:org.opencontainers.image.licenses=MIT
    type:application/vnd.cncf.helm.config.v1+json platform:linux/arm64

Free text is matched through the database's full-text index; qualifiers never are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

MAX_PER_PAGE = 100
# The last page a search goes to (a million results at the largest page size).
MAX_PAGE = 10_000
MAX_QUERY_LENGTH = 512
MAX_TERMS = 16

# Words as the full-text tokenizers see them: letters and digits; everything else separates.
_WORD = re.compile(r"\w+", re.UNICODE)

QUALIFIERS = ("namespace", "label", "annotation", "type", "platform")

Sort = Literal["relevance", "recent", "popular", "stars", "name"]


class QueryError(ValueError):
    """A query or filter that cannot be understood; the message says why."""


@dataclass(frozen=True)
class KeyValue:
    """A label or annotation filter: the key must be present and, if given, have exactly this value."""

    key: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str, what: str) -> KeyValue:
        """``key`` or ``key=value``."""
        key, sep, value = text.partition("=")
        key = key.strip()
        if not key:
            raise QueryError(f"a {what} filter needs a key: {what}=KEY or {what}=KEY=VALUE")
        return cls(key, value if sep else None)

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@dataclass(frozen=True)
class PlatformFilter:
    """``os``, ``os/arch`` or ``os/arch/variant``."""

    os: str
    architecture: str | None = None
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> PlatformFilter:
        """From ``linux``, ``linux/arm64`` or ``linux/arm/v7``."""
        parts = text.strip().lower().split("/")
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise QueryError(f"platform must be OS, OS/ARCH or OS/ARCH/VARIANT, not {text!r}")
        return cls(parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)

    @property
    def key(self) -> str:
        """The facet key prefix it matches (``linux/arm64``)."""
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class SearchQuery:
    """One search: free text plus exact filters, and which page of results."""

    text: str = ""
    namespace: str | None = None
    labels: tuple[KeyValue, ...] = ()
    annotations: tuple[KeyValue, ...] = ()
    artifact_type: str | None = None
    platform: PlatformFilter | None = None
    page: int = 1
    per_page: int = 25
    sort: Sort = "relevance"

    def __post_init__(self) -> None:
        if not 1 <= self.page <= MAX_PAGE:
            raise QueryError(f"page must be between 1 and {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise QueryError(f"the page size must be between 1 and {MAX_PER_PAGE}")
        if len(self.text) > MAX_QUERY_LENGTH:
            raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
        # No stored name, label or annotation holds one, and PostgreSQL refuses it in a comparison.
        if any("\x00" in value for value in self._texts()):
            raise QueryError("the query may not contain NUL characters")

    def _texts(self) -> list[str]:
        values = [self.text, self.namespace or "", self.artifact_type or ""]
        for pair in (*self.labels, *self.annotations):
            values += [pair.key, pair.value or ""]
        if self.platform is not None:
            values.append(self.platform.key)
        return values

    @property
    def terms(self) -> tuple[str, ...]:
        """The free text's words, lowercased and deduplicated, at most :data:`MAX_TERMS`."""
        return text_terms(self.text)

    @property
    def phrase(self) -> str:
        """The free text lowercased and trimmed: what an exact or prefix name match compares with."""
        return self.text.strip().lower()

    @property
    def has_filters(self) -> bool:
        """True if any exact filter is set."""
        return bool(self.namespace or self.labels or self.annotations or self.artifact_type or self.platform)

    @property
    def offset(self) -> int:
        """How many results come before this page."""
        return (self.page - 1) * self.per_page


def text_terms(text: str) -> tuple[str, ...]:
    """Words of ``text`` as the index sees them (lowercase letters and digits), in order, unique."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("_")
        if word:
            seen.setdefault(word, None)
    return tuple(seen)[:MAX_TERMS]


@dataclass
class _Parts:
    words: list[str] = field(default_factory=list)
    namespace: str | None = None
    labels: list[KeyValue] = field(default_factory=list)
    annotations: list[KeyValue] = field(default_factory=list)
    artifact_type: str | None = None
    platform: PlatformFilter | None = None


def parse_query(
    q: str,
    *,
    namespace: str | None = None,
    labels: list[str] | tuple[str, ...] = (),
    annotations: list[str] | tuple[str, ...] = (),
    artifact_type: str | None = None,
    platform: str | None = None,
    page: int = 1,
    per_page: int = 25,
    sort: Sort = "relevance",
) -> SearchQuery:
    """A :class:`SearchQuery` from a query string with qualifiers and from separate filter parameters.

    Separate parameters and qualifiers combine (all must match); a qualifier given twice for a
    single-valued filter (namespace, type, platform) keeps the last. Raises :class:`QueryError`.
    """
    if len(q) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    parts = _Parts(
        namespace=namespace.strip().lower() or None if namespace else None,
        labels=[KeyValue.parse(v, "label") for v in labels],
        annotations=[KeyValue.parse(v, "annotation") for v in annotations],
        artifact_type=artifact_type.strip() or None if artifact_type else None,
        platform=PlatformFilter.parse(platform) if platform else None,
    )
    for token in q.split():
        name, sep, value = token.partition(":")
        if sep and name.lower() in QUALIFIERS and value:
            _apply_qualifier(parts, name.lower(), value)
        else:
            parts.words.append(token)
    return SearchQuery(
        text=" ".join(parts.words),
        namespace=parts.namespace,
        labels=tuple(parts.labels),
        annotations=tuple(parts.annotations),
        artifact_type=parts.artifact_type,
        platform=parts.platform,
        page=page,
        per_page=per_page,
        sort=sort,
    )


def _apply_qualifier(parts: _Parts, name: str, value: str) -> None:
    if name == "namespace":
        parts.namespace = value.lower()
    elif name == "label":
        parts.labels.append(KeyValue.parse(value, "label"))
    elif name == "annotation":
        parts.annotations.append(KeyValue.parse(value, "annotation"))
    elif name == "type":
        parts.artifact_type = value
    else:
        parts.platform = PlatformFilter.parse(value)


def with_page(query: SearchQuery, page: int, per_page: int) -> SearchQuery:
    """The same search, another page."""
    return replace(query, page=page, per_page=per_page)
