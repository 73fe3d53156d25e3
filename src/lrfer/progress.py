"""Progress reporting without printing.

The library never prints. Long-running functions take an optional ``progress`` callback
``progress(event)`` where ``event`` is a :class:`ProgressEvent`; the CLI turns those events into
progress bars, and tests or notebooks can collect them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass
class ProgressEvent:
    """``task`` names the work (``"epoch 3/30"``, ``"evaluate"``); ``done``/``total`` count its steps.

    ``info`` carries values worth showing next to the bar (loss, accuracy) or a log message.
    """

    task: str
    done: int
    total: Optional[int] = None
    info: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[ProgressEvent], None]


def report(progress: Optional[Progress], task: str, done: int, total: Optional[int] = None, **info: Any) -> None:
    """Send one event to ``progress`` if a callback was given."""
    if progress is not None:
        progress(ProgressEvent(task, done, total, info))
