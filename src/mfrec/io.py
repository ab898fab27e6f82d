"""Writing files so that a reader never sees half of one, and JSON that stays valid.

Every file mfrec writes goes through :func:`atomic_path`: the content is written to a hidden
temporary name in the same folder and renamed over the target only when it is complete, so a crash
or an interrupt leaves the old file or the new one, never a torn one. The temporary file is
removed when writing fails.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed to ``path``.

    ``suffix`` is appended to the temporary name for writers that choose the format by the
    extension (matplotlib's ``savefig``, say).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """``np.savez`` of ``arrays`` (no pickled objects) to ``path`` atomically."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return Path(path)


def json_safe(o: Any) -> Any:
    """A JSON-safe copy: NaN/inf become null, NumPy scalars and arrays plain values, paths strings."""
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist") and callable(o.tolist):  # NumPy scalars and arrays
        o = o.tolist()
        if isinstance(o, list):
            return json_safe(o)
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (see :func:`json_safe` for what is converted)."""
    return write_text(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
