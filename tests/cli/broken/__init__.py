"""Deliberately broken apps that ``livepages check`` must report (tests/cli/test_check.py)."""
