"""A counter that everyone with the page open shares."""
