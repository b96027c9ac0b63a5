"""keys: derived keys, rotation, the development secret and the missing-key warning."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path

import pytest

from livepages import App, Settings
from livepages.keys import DEV_SECRET_FILE, Keys, dev_secret


def test_each_purpose_has_its_own_key_and_old_secrets_verify() -> None:
    keys = Keys("new", ("old",))
    assert keys.derive("csrf") != keys.derive("tabs")
    assert len(keys.derive("csrf")) == 32
    assert keys.derive("csrf") == Keys("new").derive("csrf")
    assert keys.all("csrf") == [keys.derive("csrf"), Keys("old").derive("csrf")]
    assert not keys.ephemeral


def test_without_a_key_each_process_gets_a_random_secret() -> None:
    one, two = Keys(None), Keys(None)
    assert one.ephemeral
    assert one.derive("tabs") != two.derive("tabs")


def test_the_development_secret_persists_and_is_git_ignored(tmp_path: Path) -> None:
    first = Keys(None, debug=True, folder=tmp_path)
    again = Keys(None, debug=True, folder=tmp_path)
    assert not first.ephemeral
    assert first.derive("cookie") == again.derive("cookie")
    secret = tmp_path / DEV_SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (secret.parent / ".gitignore").read_text() == "*\n"
    assert {p.name for p in secret.parent.iterdir()} == {".gitignore", "secret"}
    # Another folder (another project) has a secret of its own.
    assert Keys(None, debug=True, folder=tmp_path / "other").derive("cookie") != first.derive(
        "cookie"
    )


def test_processes_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(dev_secret(tmp_path))) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1
    assert {p.name for p in (tmp_path / ".livepages").iterdir()} == {".gitignore", "secret"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("settings", "warned"),
    [
        (Settings(), True),
        (Settings(secret_key="fixed"), False),
        (Settings(debug=True), False),
    ],
)
async def test_a_random_secret_is_warned_about_at_start_up(
    settings: Settings,
    warned: bool,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a debug app keeps its secret under the working directory
    with caplog.at_level(logging.WARNING, logger="livepages"):
        app = App(settings=settings)
        async with app.router.lifespan_context(app):
            pass
    messages = [r.getMessage() for r in caplog.records if "secret_key is not set" in r.getMessage()]
    assert len(messages) == (1 if warned else 0)
    if warned:
        assert "restart" in messages[0]
        assert "second process" in messages[0]
