"""The rich console every command prints to."""

from __future__ import annotations

import os

from rich.console import Console
from rich.text import Text


def piped_width() -> int | None:
    """160 columns when output is piped (CI logs, ``| tee``) rather than rich's 80, so that result
    tables keep their numbers whole; ``$COLUMNS`` still decides when set, a terminal its own width."""
    return None if Console().is_terminal or "COLUMNS" in os.environ else 160


# Messages are never hard-wrapped (a path or a reason stays on one line, whole, for grep); tables
# still fit the width.
console = Console(width=piped_width(), soft_wrap=True)


def status(label: str, style: str, message: object) -> None:
    """``label`` in ``style``, then ``message`` as plain text: a reason quoting a submission's or a
    user's values ("[/x]") must print as written, not be read as markup (or fail to parse as it)."""
    console.print(Text.assemble((label, style), " ", str(message)))
