"""Conway's Game of Life, stepped by the server and streamed to every viewer."""
