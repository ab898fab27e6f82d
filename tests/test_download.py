"""The GroupLens downloader against a local HTTP server on 127.0.0.1 serving zips these tests build."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mfrec.data.download import download
from mfrec.data.movielens import read_dataset
from mfrec.errors import DownloadError
from test_data_files import write_ml1m, write_ml25m


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """(served folder, base URL); the server stops after the test."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _zip(folder: Path, out: Path, inner: str) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:  # stored, so a flipped byte is a CRC error
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{inner}/{f.name}")
    return out


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_download_verifies_md5_then_reads_and_is_reused(tmp_path, server, monkeypatch):
    www, url = server
    z = _zip(write_ml25m(tmp_path / "src"), www / "ml-latest-small.zip", "ml-latest-small")
    (www / "ml-latest-small.zip.md5").write_text(f"MD5 (ml-latest-small.zip) = {_md5(z)}\n")
    data = tmp_path / "Data"
    monkeypatch.setenv("MFREC_DOWNLOAD_BASE_URL", url)
    raw = read_dataset("ml-latest-small", source=None, data_dir=data)  # downloads through the env var
    assert raw.ratings.height == 5 and raw.source == str(data / "ml-latest-small.zip")
    assert (data / "ml-latest-small.zip").read_bytes() == z.read_bytes()
    assert "md5" in (data / "ml-latest-small.zip.verified.json").read_text()
    assert sorted(p.name for p in data.iterdir()) == ["ml-latest-small.zip", "ml-latest-small.zip.verified.json"]
    # the verified zip is reused: no server needed any more
    monkeypatch.setenv("MFREC_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{_refused_port()}")
    assert download("ml-latest-small", data_dir=data) == data / "ml-latest-small.zip"


def test_md5_mismatch_fails_and_leaves_nothing(tmp_path, server):
    www, url = server
    _zip(write_ml25m(tmp_path / "src"), www / "ml-25m.zip", "ml-25m")
    (www / "ml-25m.zip.md5").write_text("0123456789abcdef0123456789abcdef  ml-25m.zip\n")
    with pytest.raises(DownloadError, match="has MD5 .* but GroupLens publishes 0123456789abcdef"):
        download("ml-25m", data_dir=tmp_path / "Data", base_url=url)
    assert list((tmp_path / "Data").iterdir()) == []


def test_missing_md5_falls_back_to_zip_integrity(tmp_path, server):
    www, url = server
    _zip(write_ml25m(tmp_path / "src"), www / "ml-20m.zip", "ml-20m")  # no ml-20m.zip.md5 served (404)
    path = download("ml-20m", data_dir=tmp_path / "Data", base_url=url)
    assert "zip integrity" in (tmp_path / "Data" / "ml-20m.zip.verified.json").read_text()
    assert read_dataset("ml-20m", source=path).movies.height == 4


def test_corrupt_zip_is_rejected_and_a_bad_leftover_is_replaced(tmp_path, server):
    www, url = server
    good = _zip(write_ml1m(tmp_path / "src"), tmp_path / "good.zip", "ml-1m")
    data = bytearray(good.read_bytes())
    i = data.index(b"978300760")
    data[i] = ord("7") if data[i] != ord("7") else ord("8")
    (www / "ml-1m.zip").write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="is corrupt: ml-1m/ratings.dat fails its CRC check"):
        download("ml-1m", data_dir=tmp_path / "Data", base_url=url)
    assert list((tmp_path / "Data").iterdir()) == []
    # a corrupt leftover in Data/ is downloaded again (and replaced only once the new one verifies)
    (tmp_path / "Data" / "ml-1m.zip").write_bytes(bytes(data))
    (www / "ml-1m.zip").write_bytes(good.read_bytes())
    path = download("ml-1m", data_dir=tmp_path / "Data", base_url=url)
    assert path.read_bytes() == good.read_bytes()


def test_http_error_and_no_network_sentences(tmp_path, server):
    _www, url = server
    with pytest.raises(DownloadError, match="answered HTTP 404"):
        download("ml-10m", data_dir=tmp_path / "Data", base_url=url)
    with pytest.raises(DownloadError, match="no network.*--source.*--dataset synthetic"):
        download("ml-10m", data_dir=tmp_path / "Data", base_url=f"http://127.0.0.1:{_refused_port()}")
    assert list((tmp_path / "Data").iterdir()) == []


def test_cli_without_network_says_so_in_one_sentence(tmp_path, monkeypatch):
    from mfrec.cli.prepare import prepare as prepare_cmd

    monkeypatch.setenv("MFREC_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{_refused_port()}")
    res = CliRunner().invoke(prepare_cmd, ["--dataset", "ml-100k", "--data-dir", str(tmp_path / "Data"),
                                           "--data-root", str(tmp_path / "Training_data")])
    assert res.exit_code == 2
    assert "could not download ml-100k" in res.output and "--source" in res.output and "synthetic" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "Training_data").exists() or list((tmp_path / "Training_data").iterdir()) == []


def test_a_download_that_breaks_off_is_an_error_and_leaves_nothing(tmp_path):
    """The server promises more bytes than it sends, then closes the connection."""

    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"PK" + b"\0" * 1000)
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadError, match="broke off|stopped at 1,002 of 100,000 bytes"):
            download("ml-1m", data_dir=tmp_path / "Data", base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list((tmp_path / "Data").iterdir()) == []
