"""livepages."""
