"""``python -m collapsebench`` is the ``collapsebench`` command."""

from collapsebench.cli import app

app()
