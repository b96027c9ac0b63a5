"""``python -m livepages``: the ``livepages`` command."""

from livepages.cli import main

main(prog_name="livepages")
