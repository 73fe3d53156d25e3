"""User-facing errors.

Every problem caused by the user's input (a missing file, a malformed csv, an unknown model name)
is raised as :class:`LrferError`. The CLI prints ``str(err)`` on one line and exits with code 2;
library callers can catch it like any ``ValueError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LrferError(ValueError):
    """A problem with the user's input: what is wrong, then what to do about it."""

    def __init__(self, what: str, hint: str | None = None):
        self.what = what
        self.hint = hint
        super().__init__(f"{what}. {hint}" if hint else what)


def closest(name: str, choices: Iterable[str]) -> str:
    """A 'did you mean' suffix for an unknown name, or a list of the valid names."""
    choices = sorted(choices)
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if match:
        return f"did you mean '{match[0]}'?"
    return "choose one of: " + ", ".join(choices)
