"""Notes: sign-in, private notes live across a user's tabs, and a sessions page."""
