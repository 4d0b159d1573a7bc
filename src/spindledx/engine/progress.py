"""The one progress display (rich, on stderr) used by ``score``, ``batch`` and ``slide``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ProgressBar:
    """A rich progress bar on stderr (items done / total, rate, elapsed, ETA), or nothing when disabled.

    Use as a context manager; it yields ``advance()``, to call once per finished item.

    Parameters
    ----------
    enabled
        Show the bar.
    total
        Items in the run (including those already done).
    done
        Items already done (e.g. resumed from an earlier run).
    unit
        Name of an item (``"tiles"``, ``"images"``).
    """

    def __init__(self, enabled: bool, total: int, *, done: int = 0, unit: str = "tiles") -> None:
        self.enabled, self.total, self.done, self.unit = enabled, total, done, unit
        self._progress: Any = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        unit = self.unit
        self._progress = Progress(TextColumn(f"[bold]{unit}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), console=Console(stderr=True))
        self._progress.start()
        task = self._progress.add_task(unit, total=self.total, completed=self.done, rate="")

        def advance() -> None:
            self._progress.advance(task)
            speed = self._progress.tasks[0].speed
            self._progress.update(task, rate="" if speed is None else f"{speed:.2f} {unit}/s")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
