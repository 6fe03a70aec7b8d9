"""Which mirror serves a repository: pure functions of the configured mirrors and a name."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from portside.config import MirrorSettings


@dataclass(frozen=True)
class Mirror:
    """One configured pull-through cache, with its defaults resolved."""

    prefix: str
    upstream: str
    host: str
    settings: MirrorSettings

    @property
    def whole_registry(self) -> bool:
        """True for the mirror with an empty prefix (every repository not stored locally)."""
        return self.prefix == ""


@dataclass(frozen=True)
class Target:
    """A repository served by a mirror: the mirror and the repository's name upstream."""

    mirror: Mirror
    upstream_name: str


def mirrors_from(settings: list[MirrorSettings]) -> list[Mirror]:
    """The configured mirrors, longest prefix first (so ``hub/x`` wins over ``hub``)."""
    mirrors = [Mirror(m.prefix, m.upstream, m.host or upstream_host(m.upstream), m) for m in settings]
    return sorted(mirrors, key=lambda m: len(m.prefix), reverse=True)


def upstream_host(url: str) -> str:
    """The ``host[:port]`` of an upstream URL, as containerd's ``ns`` names registries."""
    return urlsplit(url).netloc


# Docker Hub serves its official images under library/ only; `docker pull alpine` means library/alpine.
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io", "registry.hub.docker.com"})


def upstream_name_for(mirror: Mirror, name: str) -> str:
    """The repository name to ask the upstream for (``alpine`` is ``library/alpine`` on Docker Hub)."""
    if "/" not in name and urlsplit(mirror.upstream).hostname in DOCKER_HUB_HOSTS:
        return f"library/{name}"
    return name


def mirror_for(mirrors: list[Mirror], name: str) -> Target | None:
    """The mirror whose prefix ``name`` lies under, or the whole-registry mirror, or ``None``.

    ``mirrors`` must be ordered as :func:`mirrors_from` orders them.
    """
    for mirror in mirrors:
        if mirror.whole_registry:
            return Target(mirror, upstream_name_for(mirror, name))
        if name.startswith(mirror.prefix + "/"):
            return Target(mirror, upstream_name_for(mirror, name[len(mirror.prefix) + 1 :]))
    return None


def local_name_for_ns(mirrors: list[Mirror], ns: str, name: str) -> str | None:
    """The local repository for containerd's ``/v2/<name>/...?ns=<host>``, if a mirror has that host.

    A mirror with a prefix serves ``<prefix>/<name>``; the whole-registry mirror serves ``name``.
    """
    for mirror in mirrors:
        if mirror.host == ns:
            return f"{mirror.prefix}/{name}" if mirror.prefix else name
    return None
