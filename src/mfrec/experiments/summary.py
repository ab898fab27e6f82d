"""``summary.json``: what a training run did, as a small dataclass validated when it is read.

The standard fields have types; whatever else a model reports (ranking metrics such as ``hit@10``,
``rare_movies_test_rmse``, a neural model's own facts) is kept in ``extra``. A damaged file is one
sentence naming the file and the field, never a ``KeyError`` later on. ``Summary`` is also a read-only
mapping over the file's keys, so ``summary.get("test_rmse")`` reads the same as the JSON does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from mfrec.errors import MfrecError

STATUSES = ("ok", "failed")
_TEXT = ("status", "run", "dataset", "model", "data_path", "finished", "error")
_COUNT = ("epochs_run", "best_epoch", "n_train", "n_val", "n_test", "numba_threads")
_NUMBER = ("train_rmse", "val_rmse", "test_rmse", "test_mae", "train_seconds", "seconds_per_epoch", "peak_rss_mb")
_OBJECT = ("config", "versions")


def _doc(text: str, **kw):
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Summary(Mapping):
    """The facts of one run (None where the run did not produce them)."""

    status: str | None = _doc('"ok" or "failed"; None while the run has not finished', default=None)
    run: str | None = _doc("the run folder's name", default=None)
    dataset: str | None = _doc("the prepared dataset's name", default=None)
    model: str | None = _doc("the model kind (bias, mf, mf-genre, neumf, ...)", default=None)
    data_path: str | None = _doc("the prepared dataset's folder", default=None)
    finished: str | None = _doc("when the summary was written (ISO 8601)", default=None)
    error: str | None = _doc("what stopped a failed run", default=None)
    epochs_run: int | None = _doc("epochs trained", default=None)
    best_epoch: int | None = _doc("the epoch whose parameters were kept", default=None)
    n_train: int | None = _doc("training ratings", default=None)
    n_val: int | None = _doc("validation ratings", default=None)
    n_test: int | None = _doc("test ratings", default=None)
    numba_threads: int | None = _doc("Numba threads the fit used", default=None)
    train_rmse: float | None = _doc("training RMSE at the best epoch", default=None)
    val_rmse: float | None = _doc("validation RMSE at the best epoch", default=None)
    test_rmse: float | None = _doc("test RMSE of the kept model", default=None)
    test_mae: float | None = _doc("test MAE of the kept model", default=None)
    train_seconds: float | None = _doc("wall time of the fit", default=None)
    seconds_per_epoch: float | None = _doc("mean time of one epoch's training steps", default=None)
    peak_rss_mb: float | None = _doc("peak resident memory of the process (MiB)", default=None)
    config: dict[str, Any] = _doc("the hyperparameters", default_factory=dict)
    versions: dict[str, Any] = _doc("Python and package versions", default_factory=dict)
    extra: dict[str, Any] = _doc("every other fact the model reported", default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False,
                                 metadata={"doc": "the file's keys and values as read"})

    def __post_init__(self) -> None:
        if not self.data:  # built from fields: the mapping view is the facts that are set
            facts = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "data")}
            object.__setattr__(self, "data", {**{k: v for k, v in facts.items() if v is not None and v != {}},
                                              **self.extra})

    @classmethod
    def from_dict(cls, data: Any, where: str = "summary.json") -> "Summary":
        """Validate ``data`` (what summary.json holds); a bad field is one ``MfrecError`` sentence."""
        if not isinstance(data, dict):
            raise MfrecError(f"{where} is damaged: it holds a JSON {type(data).__name__}, not an object")

        def bad(name: str, want: str) -> MfrecError:
            return MfrecError(f"{where} is damaged: {name} should be {want}, found {json.dumps(data[name])[:60]}")

        values: dict[str, Any] = {}
        for name in _TEXT:
            v = data.get(name)
            if v is not None and not isinstance(v, str):
                raise bad(name, "text")
            values[name] = v
        if values["status"] is not None and values["status"] not in STATUSES:
            raise bad("status", " or ".join(f'"{s}"' for s in STATUSES))
        for name in _COUNT:
            v = data.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise bad(name, "a whole number >= 0")
            values[name] = v
        for name in _NUMBER:
            v = data.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise bad(name, "a finite number")
            values[name] = None if v is None else float(v)
        for name in _OBJECT:
            v = data.get(name)
            if v is not None and not isinstance(v, dict):
                raise bad(name, "an object")
            values[name] = dict(v or {})
        known = set(_TEXT + _COUNT + _NUMBER + _OBJECT)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known}, data=dict(data))

    @classmethod
    def read(cls, path: str | Path) -> "Summary":
        """The summary.json at ``path``; an empty summary (status None) when the file is absent."""
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MfrecError(f"{path} is damaged: not valid JSON ({getattr(e, 'msg', e)}); "
                             "the run folder cannot be read as it is") from None
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        """The summary as summary.json holds it."""
        return dict(self.data)

    # -- a read-only mapping over the file's keys -------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.data == dict(other.items())
        return NotImplemented

    __hash__ = None  # a mapping of mutable values
