"""Tests for livepages.broker."""
