"""Results that are not times (e.g. the bookkeeping fraction) are printed after pytest-benchmark's
tables, so that ``make bench`` shows every measured goal in one place."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_LINES: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Add a line to the summary printed at the end of the run."""
    return _LINES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("measured goals")
        for line in _LINES:
            terminalreporter.write_line(line)
