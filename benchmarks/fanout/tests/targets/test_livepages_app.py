from __future__ import annotations

import pytest

from benchmarks.fanout.targets.livepages_app import create_app


def test_the_placeholder_says_what_to_write() -> None:
    with pytest.raises(NotImplementedError, match=r"GET /stream and POST /change"):
        create_app()
