"""Choosing one image of a multi-platform index, as skopeo does without ``--all``."""

from __future__ import annotations

import platform as host
from typing import Any

from portside.oci.manifest import Descriptor

_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def host_platform() -> str:
    """This machine's platform as ``os/architecture``."""
    machine = host.machine().lower()
    return f"linux/{_ARCHITECTURES.get(machine, machine)}"


def platform_text(value: dict[str, Any] | None) -> str:
    """``os/architecture[/variant]`` of a descriptor's platform."""
    if not value:
        return "unknown"
    parts = [str(value.get("os", "")), str(value.get("architecture", ""))]
    if value.get("variant"):
        parts.append(str(value["variant"]))
    return "/".join(parts)


def choose_platform(children: tuple[Descriptor, ...], wanted: str | None) -> Descriptor:
    """The child for ``wanted`` (default: this machine's platform); ``ValueError`` naming the choices."""
    target = wanted or host_platform()
    for child in children:
        text = platform_text(child.platform)
        if text == target or (text.count("/") == 2 and target.count("/") == 1 and text.startswith(target + "/")):
            return child
    choices = ", ".join(platform_text(c.platform) for c in children) or "none"
    raise ValueError(f"the index has no image for {target} (it has: {choices}); use --platform or --all")
