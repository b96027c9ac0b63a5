"""Test set-up shared by tests/ and examples/: fixture plugins live in tests/fixtures."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.browser",
    "tests.fixtures.nats",
]
