"""Writing a run folder (``Run``) and loading one back (``load_experiment``)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterable

from mfrec.errors import DataError, MfrecError, ModelError
from mfrec.experiments.summary import Summary
from mfrec.io import json_safe, write_json

DEFAULT_ROOT = Path("Experiments_")
METRICS_COLUMNS = ("epoch", "train_rmse", "val_rmse", "test_rmse", "seconds")
FINGERPRINT = "dataset_fingerprint"  # the config.json / summary.json key of the dataset version a run trained on
_RUN_SUFFIX = r"-\d{8}-\d{6}-[0-9a-f]{6}"
_SUFFIX_BYTES = len("-YYYYmmdd-HHMMSS-abcdef")  # what Run.create adds to the name


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a run's numbers."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    names = ["mfrec", "numpy", "numba", "scipy", "polars", "matplotlib"]
    if "torch" in sys.modules:
        names.append("torch")
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def dataset_fingerprint(manifest) -> str | None:
    """The version of a prepared dataset: the SHA-256 (hex) of the file checksums its manifest records.

    Preparing the same ratings with the same settings gives the same files, hence the same
    fingerprint, whatever the dataset's name or the time it was written; another split gives
    another. None when the manifest records no checksums (nothing to tell versions apart by).
    """
    checksums = getattr(manifest, "checksums", None)
    if not checksums:
        return None
    text = json.dumps(dict(sorted(checksums.items())), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iu"):
        return str(int(v))
    f = float(v)
    return "" if not math.isfinite(f) else repr(f)


class Run:
    """One run folder being written: ``Run.create(...)``, then ``log`` / ``append_metrics`` /
    ``save_summary`` (or ``fail``).

    Neural models use the same object: ``extra_columns`` adds metric columns after the standard
    ``epoch,train_rmse,val_rmse,test_rmse,seconds``; ``model_path`` is where ALS writes model.npz,
    ``path`` is the folder for any other files.
    """

    def __init__(self, path: str | os.PathLike, columns: Iterable[str] = METRICS_COLUMNS):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.started = time.time()
        self._failed_summary: dict[str, Any] | None = None

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        root: str | os.PathLike = DEFAULT_ROOT,
        config: dict[str, Any] | None = None,
        extra_columns: Iterable[str] = (),
    ) -> "Run":
        """A new, unique folder ``root/<name>-<YYYYmmdd-HHMMSS>-<6 hex>``.

        The folder is claimed with ``mkdir`` (atomic), so two runs started at the same second never
        share a folder. ``name`` is made a plain file name (see ``mfrec.data.names.sanitize``); one
        too long for the file system with the suffix added is a DataError.
        """
        from mfrec.data.names import check_length, sanitize

        root = Path(root)
        safe = check_length(sanitize(name) or "run", "run name", _SUFFIX_BYTES, root)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(1000):
            path = root / f"{safe}-{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a million-to-one clash a thousand times
            raise MfrecError(f"could not create a unique run folder under {root}")
        (path / "plots").mkdir()
        columns = list(METRICS_COLUMNS) + [c for c in extra_columns if c not in METRICS_COLUMNS]
        run = cls(path, columns)
        (path / "metrics.csv").write_text(",".join(columns) + "\n")
        (path / "train.log").write_text("")
        if config is not None:
            run.save_config(config)
        run.log(f"run folder {path}")
        return run

    # -- files ----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        return self.path / "model.npz"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    def save_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / "config.json", config)

    def log(self, message: str) -> None:
        """Append a time-stamped line (or lines) to train.log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path / "train.log", "a") as f:
            for line in str(message).splitlines() or [""]:
                f.write(f"{stamp} {line}\n")

    def append_metrics(self, epoch: int, train_rmse=None, val_rmse=None, test_rmse=None, seconds=None, **extra) -> None:
        """One row of metrics.csv; ``None``/NaN leave the cell empty."""
        unknown = set(extra) - set(self.columns)
        if unknown:
            raise ValueError(f"metrics.csv of {self.name} has no column(s) {', '.join(sorted(unknown))}")
        row = {"epoch": epoch, "train_rmse": train_rmse, "val_rmse": val_rmse, "test_rmse": test_rmse,
               "seconds": seconds, **extra}
        with open(self.path / "metrics.csv", "a") as f:
            f.write(",".join(_cell(row.get(c)) for c in self.columns) + "\n")

    def save_summary(self, summary: dict[str, Any], status: str = "ok") -> dict[str, Any]:
        """Write summary.json, adding status, versions, peak_rss_mb and finished time if absent."""
        full = {"status": status, **summary}
        full.setdefault("peak_rss_mb", peak_rss_mb())
        full.setdefault("versions", package_versions())
        full.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        full.setdefault("run", self.name)
        full = json_safe(full)
        Summary.from_dict(full, str(self.path / "summary.json"))  # what is written must read back
        write_json(self.path / "summary.json", full)
        return json_safe(full)

    def fail(self, error: BaseException | str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """Mark the run failed: the error (and traceback) go to train.log, status "failed" to summary.json.
        An interrupt (``KeyboardInterrupt``, which the command line also raises for SIGTERM) is recorded
        as error "interrupted by Ctrl-C (SIGINT)" or "interrupted by SIGTERM".

        Idempotent: when a model's own guard has already marked the run failed, the CLI's outer guard
        does not log the same error a second time.
        """
        if self._failed_summary is not None:
            return self._failed_summary
        if isinstance(error, BaseException):
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            message = f"{type(error).__name__}: {error}"
            if isinstance(error, KeyboardInterrupt):  # Ctrl-C, or a signal the command line raises as one
                message = f"interrupted by {error}" if str(error) else "interrupted by Ctrl-C (SIGINT)"
        else:
            text = message = str(error)
        self.log(f"FAILED: {message}")
        if text != message:
            self.log(text.rstrip())
        self._failed_summary = self.save_summary({**(summary or {}), "error": message}, status="failed")
        return self._failed_summary


# -- loading ------------------------------------------------------------------------------------
def find_run(path_or_name: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    """A run folder from its path, its folder name under ``root``, or a ``--name`` given at training.

    A name resolves to the latest run of that name, and only when that run finished (status "ok"):
    when it failed, was interrupted or is still running, the error says so and names the latest run of
    that name that did finish (a folder name or path opens any run, finished or not)."""
    p = Path(path_or_name)
    if p.is_dir() and ((p / "config.json").is_file() or (p / "summary.json").is_file()):
        return p
    root = Path(root)
    q = root / str(path_or_name)
    if q.is_dir() and ((q / "config.json").is_file() or (q / "summary.json").is_file()):
        return q
    if root.is_dir():
        pattern = re.compile(re.escape(str(path_or_name)) + _RUN_SUFFIX + "$")
        matches = sorted((d for d in root.iterdir() if d.is_dir() and pattern.match(d.name)),
                         key=lambda d: d.name[len(str(path_or_name)):])
        if matches:
            newest, how = matches[-1], why_unfinished(matches[-1])
            if how is None:
                return newest
            done = [d for d in matches if why_unfinished(d) is None]
            other = (f"to use the latest that finished, pass {done[-1].name}" if done else "no run of that name finished")
            other += "; to open this one anyway, pass its folder name"
            raise MfrecError(f"the newest run named {str(path_or_name)!r}, {newest.name}, {how}: {other}")
    raise MfrecError(f"no experiment {str(path_or_name)!r} (looked for {p} and for runs named so under {root})")


def why_unfinished(run_path: Path) -> str | None:
    """None for a run that finished (status "ok"), else what became of it, in words ("failed (...)",
    "did not finish (...)"), to follow "run NAME" in a sentence."""
    try:
        summary = Summary.read(run_path / "summary.json")
    except MfrecError:
        return "has a damaged summary.json"
    if summary.status == "ok":
        return None
    if summary.status == "failed":
        return f"failed ({summary.error or 'see its train.log'})"
    return "did not finish (no summary.json: it is still training, or it was killed)"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` ({} when the file is absent); a damaged file is one sentence."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MfrecError(f"{path} is damaged: not valid JSON ({getattr(e, 'msg', e)}); "
                         "the run folder cannot be read as it is") from None
    if not isinstance(data, dict):
        raise MfrecError(f"{path} is damaged: it holds a JSON {type(data).__name__}, not an object")
    return data


CONFIG_TEXT = ("model", "dataset", "data_path")  # config.json fields the readers use as text


def read_config(path: Path) -> dict[str, Any]:
    """A run's config.json (see ``read_json``) with the fields every reader relies on checked:
    model, dataset and data_path are text where present; a wrong one is one sentence."""
    config = read_json(path)
    for key in CONFIG_TEXT:
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            raise MfrecError(f"{path} is damaged: {key} should be text, found {json.dumps(value)[:40]}")
    return config


def read_metrics(run_path: str | os.PathLike):
    """``metrics.csv`` as polars with ``epoch`` as Int64 and every other column as Float64 (empty
    cells -> null); a run without the file gives an empty frame.

    A damaged file (not UTF-8, empty, no ``epoch`` column, a row with another number of cells than
    the header, a cell that is not a number) is one MfrecError sentence naming the file and line.
    """
    import csv

    import polars as pl

    f = Path(run_path) / "metrics.csv"
    if not f.is_file():
        return pl.DataFrame({"epoch": pl.Series([], dtype=pl.Int64)})

    def damaged(what: str) -> MfrecError:
        return MfrecError(f"{f} is damaged: {what}; its curves cannot be read (train the run again to get them)")

    try:
        text = f.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise damaged(f"byte {e.start} is not UTF-8 text") from None
    except OSError as e:
        raise MfrecError(f"{f} cannot be read ({e.strerror or e})") from None
    try:
        rows = list(csv.reader(text.splitlines(), strict=True))
    except csv.Error as e:
        raise damaged(f"it is not a CSV table ({e})") from None
    if not rows or not any(rows[0]):
        raise damaged("it is empty (a run writes its header line when it starts)")
    if not text.endswith("\n"):
        raise damaged(f"its last line ({len(rows)}) is cut off: every line a run writes ends with a line break")
    header = rows[0]
    if "epoch" not in header or len(set(header)) != len(header) or not all(header):
        raise damaged(f"its header {','.join(header)[:60]!r} is not epoch,train_rmse,... with one name per column")
    columns: dict[str, list] = {c: [] for c in header}
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise damaged(f"line {line} has {len(row)} cells where the header has {len(header)}")
        for c, cell in zip(header, row):
            try:
                value = None if cell == "" else int(cell) if c == "epoch" else float(cell)
            except ValueError:
                raise damaged(f"line {line} holds {cell[:20]!r} in column {c}, which is not a "
                              f"{'whole number' if c == 'epoch' else 'number'}") from None
            if c == "epoch" and value is None:
                raise damaged(f"line {line} has no epoch")
            columns[c].append(value)
    return pl.DataFrame([pl.Series(c, v, dtype=pl.Int64 if c == "epoch" else pl.Float64) for c, v in columns.items()])


class Experiment:
    """A finished (or failed) training run loaded from its folder (files only, no inference).

    ``config``, ``summary`` (dicts), ``metrics`` (polars), ``log`` (text) are read at once;
    ``model``, ``dataset``, ``movies`` and ``users`` load on first use. ``mfrec.load_experiment``
    returns the subclass in ``mfrec.inference.api`` that adds recommend/similar/fold_in/explain.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config: dict[str, Any] = read_config(self.path / "config.json")
        self.summary = Summary.read(self.path / "summary.json")
        self._model = None
        self._dataset = None
        self._metrics = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return self.summary.get("status", "unfinished")

    @property
    def metrics(self):
        """metrics.csv as a polars DataFrame (empty cells are null)."""
        if self._metrics is None:
            f = self.path / "metrics.csv"
            if not f.is_file():
                raise MfrecError(f"{f} is missing")
            self._metrics = read_metrics(self.path)
        return self._metrics

    @property
    def log(self) -> str:
        f = self.path / "train.log"
        # a log is for reading: bytes that are not UTF-8 (a damaged file) show as U+FFFD, not an error
        return f.read_text(errors="replace") if f.is_file() else ""

    @property
    def model(self):
        """The fitted model: a ``FactorModel`` from model.npz (ALS), an ``EaseModel`` from ease.npz, a
        neural model through ``mfrec.neural.load_model``."""
        if self._model is None:
            npz = self.path / "model.npz"
            if (self.path / "ease.npz").is_file():
                from mfrec.models.ease import EaseModel

                self._model = EaseModel.load(self.path / "ease.npz")
            elif npz.is_file():
                from mfrec.models.factor import FactorModel

                self._model = FactorModel.load(npz)
            else:
                try:
                    from mfrec.neural import load_model  # type: ignore[attr-defined]
                except ImportError:
                    raise ModelError(f"{self.path} has no model.npz (status {self.status})") from None
                self._model = load_model(self.path)
        return self._model

    @property
    def factors(self):
        """The run's ``FactorModel``: an ALS run's model.npz, or the factors.npz a neumf or
        genre-embedding run exports (ModelError when the run has neither)."""
        from mfrec.models.factor import FactorModel

        if (self.path / "model.npz").is_file():
            return self.model
        if (self.path / "ease.npz").is_file():
            raise ModelError(f"run {self.name} is an EASE run: it has item-item weights (exp.model.B), no factors")
        return FactorModel.load(self.path)

    @property
    def dataset(self):
        """The prepared dataset the run trained on (from config's data_path, else its name); a dataset
        prepared again since, with other files, is refused (see ``check_dataset``)."""
        if self._dataset is None:
            from mfrec.data import load

            data_path = self.config.get("data_path")
            if data_path and (Path(data_path) / "manifest.json").is_file():
                dataset = load(data_path)
            else:
                dataset = load(self.config.get("dataset") or data_path)
            self.check_dataset(dataset)
            self._dataset = dataset
        return self._dataset

    @property
    def dataset_fingerprint(self) -> str | None:
        """The fingerprint of the dataset version the run trained on (``dataset_fingerprint``), from
        config.json, else summary.json; None for runs written before runs recorded it."""
        for name, facts in (("config.json", self.config), ("summary.json", self.summary)):
            value = facts.get(FINGERPRINT)
            if value is None:
                continue
            if not (isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value)):
                raise MfrecError(f"{self.path / name} is damaged: {FINGERPRINT} should be 64 hex digits, "
                                 f"found {json.dumps(value)[:40]}")
            return value
        return None

    def check_dataset(self, dataset) -> None:
        """Raise a DataError when ``dataset`` is not the version of the dataset the run trained on."""
        want = self.dataset_fingerprint
        if want is None:  # a run from before fingerprints: nothing to compare
            return
        got = dataset_fingerprint(getattr(dataset, "manifest", None))
        if got != want:
            raise DataError(f"run {self.name} was trained on another version of dataset {dataset.name} than "
                            f"{dataset.path} holds now (fingerprint {want[:12]} then, {(got or 'none')[:12]} now): "
                            f"train the run again, or prepare the dataset again with the settings it had then")

    @property
    def movies(self):
        return self.dataset.movies

    @property
    def users(self):
        return self.dataset.users

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, model={self.config.get('model')!r}, status={self.status!r})"
