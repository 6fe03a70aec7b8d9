"""Search follows the tag changes that happen outside a push: restores and repository deletes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from tests.support.accounts import AuthServer, Caller, PortsideCli, auth_env, basic_header, push_small_image

ADMIN = ("root", "root-password-1")


def _word() -> str:
    return "w" + uuid.uuid4().hex[:10]


def _found(server: AuthServer, query: str) -> list[str]:
    response = httpx.get(
        f"{server.url}/api/v1/search",
        params={"q": query},
        headers={"Authorization": basic_header(*ADMIN)},
        timeout=30.0,
    )
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["results"]]


def test_search_follows_restores_and_repository_deletes(start_server: Callable[..., AuthServer]) -> None:
    server = start_server(env=auth_env("basic"))
    PortsideCli(server).create_user(*ADMIN, admin=True)
    admin = Caller(server.url, "basic", ADMIN)
    repository, tag = f"{_word()}/{_word()}", _word()
    image = push_small_image(admin, repository, tag)
    assert _found(server, tag) == [repository]

    assert admin.delete(f"/v2/{repository}/manifests/{tag}").status_code == 202
    assert _found(server, tag) == []

    restored = httpx.post(
        f"{server.url}/api/v1/tag-restores",
        json={"repository": repository, "tag": tag, "digest": image.digest},
        headers={"Authorization": basic_header(*ADMIN)},
        timeout=30.0,
    )
    assert restored.status_code == 200, restored.text
    assert _found(server, tag) == [repository]

    deleted = httpx.delete(
        f"{server.url}/api/v1/repositories/{repository}",
        headers={"Authorization": basic_header(*ADMIN)},
        timeout=30.0,
    )
    assert deleted.status_code == 200, deleted.text
    assert _found(server, tag) == []
    assert _found(server, repository.split("/")[1]) == []
    # A repository created next (it may reuse the deleted one's id) starts with a clean entry.
    other = f"{_word()}/{_word()}"
    push_small_image(admin, other, _word())
    assert _found(server, tag) == []
    admin.close()
