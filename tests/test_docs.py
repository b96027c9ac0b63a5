"""Every ```python block of docs/*.md that starts with ``# runnable`` runs cleanly.

Each snippet runs as a script (``__name__ == "__main__"``) in a fresh interpreter and
an empty folder, so examples in the docs cannot rot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(# runnable\n.*?)^```$", re.MULTILINE | re.DOTALL)


def runnable_blocks() -> list[tuple[str, str]]:
    """(``name.md#n``, source) for every runnable block, in document order."""
    blocks = []
    for doc in sorted(DOCS.glob("*.md")):
        for n, match in enumerate(BLOCK.finditer(doc.read_text(encoding="utf-8")), start=1):
            blocks.append((f"{doc.name}#{n}", match.group(1)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_core_docs_have_runnable_examples() -> None:
    documented = {name.split("#")[0] for name, _ in BLOCKS}
    assert {"pages.md", "actions.md", "templates.md"} <= documented


@pytest.mark.parametrize("source", [s for _, s in BLOCKS], ids=[n for n, _ in BLOCKS])
def test_snippet_runs(source: str, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)])}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
