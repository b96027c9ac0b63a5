"""``livepages version``, run as the installed command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from livepages.cli.version import DISTRIBUTIONS


def test_version_prints_livepages_python_and_each_key_dependency() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "livepages", "version"], capture_output=True, text=True, check=True
    ).stdout
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert lines["livepages"] == metadata.version("livepages")
    assert lines["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    for name in DISTRIBUTIONS:
        assert name in lines


def test_the_console_script_is_installed_and_every_command_has_help() -> None:
    command = shutil.which("livepages", path=str(Path(sys.executable).parent))
    assert command is not None
    out = subprocess.run([command, "--help"], capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in ("init", "check", "routes", "version"))
    for name in ("init", "check", "routes", "version"):
        result = subprocess.run([command, name, "--help"], capture_output=True, text=True)
        assert result.returncode == 0
        assert "Usage: livepages " + name in result.stdout
