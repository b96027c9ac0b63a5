"""The README's example runs and does what the README says."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from livepages.testing import Client

README = Path(__file__).resolve().parents[1] / "README.md"


def load_example() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    [example] = [b for b in blocks if "@app.page" in b]
    assert len(example.splitlines()) <= 45
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(example, str(README), "exec"), module.__dict__)
    return module


@pytest.mark.anyio
async def test_a_message_sent_in_one_browser_appears_in_the_other() -> None:
    example = load_example()
    async with Client(example.app) as client:
        alice, bob = await client.get("/rooms/lobby"), await client.get("/rooms/lobby")
        assert alice.status_code == 200
        assert "@post(&#39;/rooms/lobby/_action/send&#39;" in alice.html
        async with bob.stream() as stream:
            await stream.next_event()
            response = await alice.action("send", {"text": "<hello>"})
            assert response.status_code == 200  # a Datastar request: errors cleared
            event = await stream.next_event()
            assert event.option("selector") == "#messages"
            assert event.elements == "<li>&lt;hello&gt;</li>"
