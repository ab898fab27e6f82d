"""Names that become folder or file names: dataset names, run names, prediction labels.

A name given on the command line must stay one plain component inside the folder it is meant for:
no ``/``, no ``.`` or ``..``, nothing hidden, and short enough for the file system once mfrec has
added its suffixes (``.<name>.tmp-...``, ``<name>-<time>-<hex>``). :func:`plain_name` refuses
anything else in one sentence; :func:`sanitize` turns free text (a run name, a label) into such a
name, and :func:`check_length` refuses one that is too long.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mfrec.errors import DataError

ALLOWED = "letters, digits, '.', '_' and '-', starting with a letter or digit"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME_MAX = 255  # bytes per path component where the file system cannot be asked (ext4, APFS, NTFS)


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:37] + "...")


def name_max(folder: str | os.PathLike | None) -> int:
    """The file system's limit on one file name, in bytes, under ``folder`` (or its nearest existing parent)."""
    p = Path(folder) if folder is not None else None
    while p is not None and not p.exists():
        p = p.parent if p.parent != p else None
    try:
        return int(os.pathconf(p if p is not None else ".", "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows) or no answer
        return NAME_MAX


def check_length(name: str, what: str, reserve: int = 0, folder: str | os.PathLike | None = None) -> str:
    """``name`` when it fits the file-name limit with ``reserve`` bytes to spare for mfrec's suffixes."""
    limit = name_max(folder) - reserve
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > limit:
        raise DataError(f"{what} {_shown(name)} is {size} bytes long, but names here may be at most {limit} "
                        f"(the file system's {limit + reserve}-byte limit less {reserve} for mfrec's suffixes): "
                        f"choose a shorter one")
    return name


def plain_name(name: str, what: str, reserve: int = 0, folder: str | os.PathLike | None = None) -> str:
    """``name`` unchanged when it is one plain folder name (see ``ALLOWED``) that fits; else a DataError."""
    name = str(name)
    if not is_plain(name):
        raise DataError(f"{what} {_shown(name)} is not a plain name: use only {ALLOWED}")
    return check_length(name, what, reserve, folder)


def is_plain(name: str) -> bool:
    """Whether ``name`` is made of ``ALLOWED`` characters only (length not checked)."""
    return bool(_PLAIN.fullmatch(str(name)))


def sanitize(text: str) -> str:
    """``text`` with every run of other characters than letters, digits, '.', '_', '-' made one '-',
    and leading/trailing '-' and '.' removed ('' when nothing is left)."""
    return _UNSAFE.sub("-", str(text)).strip("-.")
