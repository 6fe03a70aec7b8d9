"""Pull-through cache (mirror): optional, switched on by ``mirrors`` in the settings.

``build_app`` registers it; the core never imports this package.
"""

from __future__ import annotations

from starlette.applications import Starlette

from portside.proxy.api import proxy_dispatch
from portside.proxy.cache import ProxyService
from portside.registry.services import Registry

__all__ = ["ProxyService", "proxy_dispatch", "start_proxy"]


def start_proxy(app: Starlette, registry: Registry) -> ProxyService:
    """Build the cache for ``registry``'s mirrors, hang it on the app and let the policy know its rules."""
    service = ProxyService(registry)
    app.state.proxy = service
    registry.accounts.mirror_pull_rule = service.pull_rule
    return service
