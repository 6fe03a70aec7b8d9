"""The web UI's read-only pages on every backend (SQLite, PostgreSQL, a cluster behind nginx).

The registry fixture runs without authentication, where everyone may pull everything: the
pages show private repositories too, as the registry API would serve them.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.protocol import unique_repo
from tests.support.server import RegistryEndpoint
from tests.ui.seed import image_config, push_configured_image, push_index, push_sbom

pytestmark = pytest.mark.integration


def text_of(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_repository_tag_index_search_and_namespace_pages(client: httpx.Client, registry: RegistryEndpoint) -> None:
    name = unique_repo("webui")
    namespace = name.split("/")[0]
    labels = {"org.opencontainers.image.title": "Pages <i>test</i>", "team": name.split("/")[1]}
    latest = push_configured_image(client, name, "latest", image_config(labels=labels, entrypoint=["/bin/pages"]))
    push_sbom(client, name, latest)
    multi = push_index(client, name, "multi", [("linux", "amd64"), ("linux", "arm64")])

    page = client.get(f"/r/{name}")
    assert page.status_code == 200
    body = text_of(page.text)
    assert f"docker pull {registry.host}/{name}:latest" in body
    assert re.search(r"multi sha256:[0-9a-f]{12} 7\.\d KB linux/amd64, linux/arm64", body)
    assert re.search(r"latest sha256:[0-9a-f]{12} 3\.\d KB linux/amd64", body)
    # Created private by the push, but without authentication nothing stops a pull: the page says so.
    assert f"{name} private · not enforced" in body
    assert "Authentication is off" in body
    assert "anyone who can reach this registry may pull and push every repository" in body

    tag = client.get(f"/r/{name}/-/tag/latest")
    assert tag.status_code == 200
    body = text_of(tag.text)
    assert latest.digest in body
    assert "/bin/pages" in body
    assert "Pages &lt;i&gt;test&lt;/i&gt;" in tag.text
    assert "SBOM application/spdx+json" in body

    index = client.get(f"/r/{name}/-/manifest/{multi.digest}")
    assert index.status_code == 200
    children = re.findall(rf'href="/r/{name}/-/manifest/(sha256:[0-9a-f]{{64}})">(linux/[a-z0-9]+)<', index.text)
    assert [platform for _, platform in children] == ["linux/amd64", "linux/arm64"]
    child = client.get(f"/r/{name}/-/manifest/{children[1][0]}")
    assert child.status_code == 200
    assert "linux/arm64" in text_of(child.text)

    found = client.get("/search", params={"label": f"team={name.split('/')[1]}"})
    assert found.status_code == 200
    assert f'href="/r/{name}"' in found.text
    by_platform = client.get("/search", params={"q": name.split("/")[1], "os": "linux", "arch": "arm64"})
    assert f'href="/r/{name}"' in by_platform.text

    listed = client.get(f"/n/{namespace}")
    assert listed.status_code == 200
    assert f'href="/r/{name}"' in listed.text
    assert "private · not enforced" in text_of(listed.text)

    assert client.get(f"/r/{name}/-/tag/missing").status_code == 404
    assert client.get(f"/r/{name}-missing").status_code == 404
