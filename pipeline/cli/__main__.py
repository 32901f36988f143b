"""``python -m pipeline.cli``: the same as the ``wastewatch`` command."""

from . import main

main()
