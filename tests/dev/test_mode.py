"""Development mode: set by LIVEPAGES_DEV_BOOT, it changes what an App does."""

from __future__ import annotations

from pathlib import Path

import pytest

from livepages import App, Page
from livepages.dev.mode import BOOT_ENV, DevMode
from livepages.sessions.sqlite import SQLiteSessionStore


def test_outside_livepages_dev_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOT_ENV, raising=False)
    app = App(sessions=True)
    assert app.dev is None
    assert not app.settings.debug
    assert not isinstance(app.sessions.store, SQLiteSessionStore)  # type: ignore[union-attr]


def test_in_a_dev_process_the_app_debugs_keeps_sessions_in_sqlite_and_sends_its_boot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(BOOT_ENV, "b1")
    app = App(sessions=True)

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "home"

    assert app.dev == DevMode("b1")
    assert app.settings.debug
    assert isinstance(app.sessions.store, SQLiteSessionStore)  # type: ignore[union-attr]
    assert app.documents.build.id == "b1"  # pages of an earlier process reload
    assert DevMode.from_env({}) is None
