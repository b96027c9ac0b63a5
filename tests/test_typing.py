"""Page URLs are type-checked: mypy --strict rejects a wrong parameter name or type.

The check runs mypy in a subprocess on snippets written to a temporary folder,
against the installed livepages (its ``py.typed`` marker makes mypy read it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PAGE = """\
from livepages import App, Page, url

app = App()


@app.page("/rooms/{room}")
class Room(Page):
    room: str
    tab: int = 1

    async def render(self) -> str:
        return self.room
"""

SNIPPETS = {
    "good": PAGE + 'link: str = Room(room="42", tab=2).url\nother: str = url(Room, room="42")\n',
    "wrong_type": PAGE + "link = Room(room=42).url\n",
    "wrong_name": PAGE + 'link = Room(rom="42").url\n',
    "wrong_query_type": PAGE + 'link = Room(room="42", tab="two").url\n',
}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """mypy's messages for each snippet, from one run over all of them."""
    folder = tmp_path_factory.mktemp("typing")
    for name, source in SNIPPETS.items():
        (folder / f"{name}.py").write_text(source)
    (folder / "mypy.ini").write_text("[mypy]\n")  # not the repository's configuration
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(folder / "mypy.ini"),
            "--cache-dir",
            str(folder / ".mypy_cache"),
            "--python-executable",
            sys.executable,
            "--no-error-summary",
            "--show-error-codes",
            *(f"{name}.py" for name in SNIPPETS),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr + result.stdout  # 2 = mypy crashed
    by_file: dict[str, str] = dict.fromkeys(SNIPPETS, "")
    for line in result.stdout.splitlines():
        name = Path(line.split(":", 1)[0]).stem
        assert name in by_file, f"unexpected mypy output: {line}"
        by_file[name] += line + "\n"
    return by_file


def test_correct_code_passes(mypy_output: dict[str, str]) -> None:
    # Also proves that mypy found livepages: a missing import would be reported here.
    assert mypy_output["good"] == ""


def test_wrong_argument_type_is_an_error(mypy_output: dict[str, str]) -> None:
    assert (
        'Argument "room" to "Room" has incompatible type "int"; expected "str"'
        in (mypy_output["wrong_type"])
    )


def test_wrong_parameter_name_is_an_error(mypy_output: dict[str, str]) -> None:
    assert 'Unexpected keyword argument "rom" for "Room"' in mypy_output["wrong_name"]


def test_wrong_query_parameter_type_is_an_error(mypy_output: dict[str, str]) -> None:
    assert (
        'Argument "tab" to "Room" has incompatible type "str"; expected "int"'
        in (mypy_output["wrong_query_type"])
    )
