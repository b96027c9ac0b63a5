"""The public API is exported explicitly: ``__all__`` is sorted, complete and resolves."""

from __future__ import annotations

import types

import pytest

import livepages
import livepages.datastar
import livepages.store

PACKAGES = [livepages, livepages.datastar, livepages.store]


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_is_sorted_without_duplicates(package: types.ModuleType) -> None:
    assert package.__all__ == sorted(package.__all__, key=isort_key)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_entry_resolves(package: types.ModuleType) -> None:
    for name in package.__all__:
        assert getattr(package, name, None) is not None, name


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_exported(package: types.ModuleType) -> None:
    # Submodules become attributes of their package when imported; they are not API.
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(package.__all__) == set()


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from livepages import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(livepages.__all__)
