"""Which repositories a caller may see, as a WHERE clause over the repositories table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_

from portside.metadata.records import Visibility
from portside.metadata.tables import repositories


def visibility_filter(visible: Visibility) -> Any:
    """A WHERE clause for the repositories ``visible`` allows."""
    conditions: list[Any] = [repositories.c.visibility == "public"]
    for namespace in sorted(visible.namespaces):
        prefix = f"{namespace}/"
        # A repository may be named exactly like its namespace ("alice" in alice's namespace).
        conditions.append(repositories.c.name == namespace)
        conditions.append(func.substr(repositories.c.name, 1, len(prefix)) == prefix)
    if visible.repositories:
        conditions.append(repositories.c.name.in_(sorted(visible.repositories)))
    return or_(*conditions)
