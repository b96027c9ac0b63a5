"""Chat rooms whose new messages are appended, not re-rendered."""
