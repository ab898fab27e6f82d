"""What long-running work reports upward, and the one early-stopping rule.

Fit loops, downloads and evaluations take ``callback=``: a function that receives the events
below. They never draw a progress bar or write a file themselves; the command line turns the events
into a bar (``mfrec.cli.common.ProgressBar``), ``mfrec.training`` into metrics.csv rows and log
lines, a benchmark into timings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Step:
    """``advance`` more units of ``total`` (None when unknown) done in the work named ``label``."""

    advance: int
    total: Optional[int]
    label: str
    unit: str = ""


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch of a fit loop.

    ``metrics`` holds the model's own metrics.csv columns (train_loss, val_hit@10, stage, ...);
    ``note`` is a one-line account for the log and the progress bar; ``stop`` is true when early
    stopping ends the fit after this epoch.
    """

    epoch: int
    train_rmse: Optional[float] = None
    val_rmse: Optional[float] = None
    test_rmse: Optional[float] = None
    seconds: Optional[float] = None
    best_epoch: Optional[int] = None
    stop: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    note: str = ""


Callback = Callable[[Any], Any]


def emit(callback: Callback | None, event: Any) -> None:
    """Send ``event`` to ``callback`` when there is one."""
    if callback is not None:
        callback(event)


def fmt(v: float | None) -> str:
    """A metric for a log line: 4 decimals, or "-" when missing."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


class EarlyStopping:
    """The best epoch so far and when to stop: after ``patience`` epochs without a better score.

    Lower scores are better unless ``higher_is_better``. ``update`` returns whether the epoch's
    score is a new best (the caller keeps that epoch's parameters); ``should_stop`` is never true
    without a validation score or with ``patience`` 0/None.
    """

    def __init__(self, patience: int | None, higher_is_better: bool = False):
        self.patience = int(patience or 0)
        self.higher_is_better = higher_is_better
        self.score = -math.inf if higher_is_better else math.inf
        self.epoch = 0

    def update(self, score: float, epoch: int) -> bool:
        better = score > self.score if self.higher_is_better else score < self.score
        if better:
            self.score, self.epoch = score, epoch
        return better

    def should_stop(self, epoch: int, validated: bool) -> bool:
        return bool(self.patience) and validated and epoch - self.epoch >= self.patience
