from __future__ import annotations

import pytest

from benchmarks.classifieds.browser import route_of
from benchmarks.classifieds.users import (
    TOKEN,
    WATCHER_EVERY,
    Arrival,
    Role,
    arrival_of,
    partner_of,
    role_of,
    token,
)


@pytest.mark.parametrize("users", [1, 2, 3, 5, 9, 10, 11, 19, 20, 21, 99, 500, 501])
def test_every_seller_and_buyer_are_each_others_partner(users: int) -> None:
    roles = [role_of(number, users) for number in range(users)]
    for number, role in enumerate(roles):
        if role is Role.WATCHER:
            continue
        partner = partner_of(number)
        assert 0 <= partner < users
        assert partner_of(partner) == number
        assert {role, roles[partner]} == {Role.SELLER, Role.BUYER}
    watchers = roles.count(Role.WATCHER)
    assert users // WATCHER_EVERY <= watchers <= users // WATCHER_EVERY + 1


def test_one_user_in_ten_is_new_and_one_signs_in() -> None:
    arrivals = [arrival_of(number) for number in range(500)]
    assert arrivals.count(Arrival.NEW) == 50
    assert arrivals.count(Arrival.SIGNIN) == 50


def test_tokens_are_unique_and_found_in_text() -> None:
    tokens = {token(user, sequence) for user in range(0, 10_000, 7) for sequence in (1, 99_999)}
    assert len(tokens) == 2 * len(range(0, 10_000, 7))
    text = f"<li>Is it still there? {token(42, 7)}<time>now</time></li>"
    assert TOKEN.findall(text) == ["ltk0042n00007"]


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/", "GET /"),
        ("GET", "/?q=lamp&category=home", "GET /?query"),
        ("GET", "/listings/12", "GET /listings/{id}"),
        ("POST", "/listings/12/_action/contact", "POST /listings/{id}/_action/contact"),
        ("GET", "/chats/3/_live", "GET /chats/{id}/_live"),
        ("GET", "/photos/7", "GET /photos/{id}"),
    ],
)
def test_route_names_leave_ids_and_queries_out(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route
