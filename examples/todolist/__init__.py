"""A shared todo list with a filter per browser tab."""
