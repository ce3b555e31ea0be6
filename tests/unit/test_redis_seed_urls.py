"""``REDIS_URL`` listing several seed nodes of a cluster: how the list reads."""

from __future__ import annotations

import pytest

from services.redis_connection import seed_urls


def test_one_url_is_itself() -> None:
    assert seed_urls("redis://h:6379/0") == ["redis://h:6379/0"]


def test_bare_nodes_take_the_first_urls_scheme_credentials_and_database() -> None:
    assert seed_urls("rediss://u:pw@a:7000/0, b:7001 ,c:7002") == [
        "rediss://u:pw@a:7000/0",
        "rediss://u:pw@b:7001/0",
        "rediss://u:pw@c:7002/0",
    ]


def test_a_database_named_on_a_later_node_applies_to_all() -> None:
    assert seed_urls("redis://a:7000,b:7001/0") == ["redis://a:7000/0", "redis://b:7001/0"]


def test_full_urls_are_kept() -> None:
    assert seed_urls("redis://a:7000/0,redis://x@b:7001/0") == [
        "redis://a:7000/0",
        "redis://x@b:7001/0",
    ]


def test_a_list_must_start_with_a_url() -> None:
    with pytest.raises(ValueError, match="needs a scheme"):
        seed_urls("a:7000,b:7001")
