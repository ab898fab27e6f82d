"""Download a GroupLens MovieLens zip into ``Data/`` and verify it before use.

The zip is fetched from ``<base>/<name>.zip`` (base: the ``base_url`` argument, else the
``MFREC_DOWNLOAD_BASE_URL`` environment variable, else GroupLens), written to a temporary name in
``Data/`` with a progress bar and renamed only once verified: against the published
``<name>.zip.md5`` where GroupLens publishes one (ml-20m, ml-25m, ml-32m, ml-latest,
ml-latest-small), by zip integrity (every member's CRC) otherwise or when the checksum cannot be
fetched. A zip already in ``Data/`` is reused once it verifies; a marker file remembers that, so it
is not re-checked on every run.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from mfrec.errors import DownloadError
from mfrec.io import atomic_path, write_json

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
ENV_BASE_URL = "MFREC_DOWNLOAD_BASE_URL"
PUBLISHES_MD5 = frozenset({"ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small"})
_CHUNK = 1 << 20


def resolve_base_url(override: str | None = None) -> str:
    return (override or os.environ.get(ENV_BASE_URL) or GROUPLENS).rstrip("/")


def _no_network(name: str, url: str, reason: object) -> DownloadError:
    return DownloadError(
        f"could not download {name} from {url} ({reason}): there seems to be no network here, so pass "
        f"--source with an extracted {name} folder or the GroupLens {name}.zip, or use --dataset synthetic"
    )


def _open(url: str, name: str, timeout: float):
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s) URLs only)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {name}: {url} answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _no_network(name, url, e.reason) from None
    except (socket.timeout, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as e:
        raise _no_network(name, url, e) from None


def fetch_md5(name: str, url: str | None = None, timeout: float = 15.0) -> str | None:
    """The published MD5 of ``<name>.zip``, or None when it is not published or cannot be fetched."""
    url = url or f"{resolve_base_url()}/{name}.zip.md5"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310
            text = r.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    return m.group(1).lower() if m else None


def _md5(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 (GroupLens publishes MD5)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def check_zip(path: Path, label: str) -> None:
    """Raise DownloadError unless ``path`` is a zip whose every member passes its CRC check."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as e:
        raise DownloadError(f"{label} is not a valid zip file ({e}); delete it and download again") from None
    if bad is not None:
        raise DownloadError(f"{label} is corrupt: {bad} fails its CRC check; delete it and download again")


def verify(path: Path, label: str, md5: str | None) -> str:
    """Check the zip by checksum (when known) or by integrity; return how it was verified."""
    if md5:
        got = _md5(path)
        if got != md5:
            raise DownloadError(f"{label} has MD5 {got} but GroupLens publishes {md5}: the download is corrupt; try again")
        return f"md5 {md5}"
    check_zip(path, label)
    return "zip integrity"


def _marker(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".verified.json")


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def download(
    name: str,
    data_dir: str | os.PathLike = "Data",
    base_url: str | None = None,
    callback=None,
    timeout: float = 30.0,
) -> Path:
    """``data_dir/<name>.zip``, downloaded and verified unless a verified copy is already there.

    The download reports its bytes to ``callback`` as ``mfrec.callbacks.Step`` events.
    """
    from mfrec.callbacks import Step, emit

    base = resolve_base_url(base_url)
    data_dir = Path(data_dir)
    target = data_dir / f"{name}.zip"
    url = f"{base}/{name}.zip"
    md5_url = f"{url}.md5"

    if target.is_file():
        marker = _marker(target)
        try:
            known = json.loads(marker.read_text()) if marker.is_file() else None
        except (OSError, ValueError):
            known = None
        if known and known.get("stamp") == _stamp(target):
            return target
        md5 = fetch_md5(name, md5_url) if name in PUBLISHES_MD5 else None
        try:
            how = verify(target, str(target), md5)
        except DownloadError:
            pass  # a broken or outdated leftover: download it again below (replaced only on success)
        else:
            write_json(marker, {"stamp": _stamp(target), "verified_by": how})
            return target

    data_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with _open(url, name, timeout) as resp:
            total = resp.headers.get("Content-Length")
            n_bytes = int(total) if total and total.isdigit() else None
            done = 0
            with open(tmp, "wb") as out:
                while True:
                    try:
                        block = resp.read(_CHUNK)
                    except (socket.timeout, TimeoutError, OSError, http.client.HTTPException) as e:
                        raise DownloadError(f"the download of {url} broke off after {done / 1e6:.1f} MB ({e}); try again") from None
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    emit(callback, Step(len(block), n_bytes, f"downloading {name}.zip", " B"))
            if total and total.isdigit() and done != int(total):
                raise DownloadError(f"the download of {url} stopped at {done:,} of {int(total):,} bytes; try again")
        md5 = fetch_md5(name, md5_url, timeout) if name in PUBLISHES_MD5 else None
        how = verify(tmp, f"the downloaded {url}", md5)
    write_json(_marker(target), {"stamp": _stamp(target), "verified_by": how, "url": url})
    return target
