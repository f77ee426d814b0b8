"""Resumable, checksummed downloads (plstm_repro.data.download) against a local HTTP server."""

import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plstm_repro.data.download import (
    ChecksumError,
    DownloadError,
    download_file,
    md5sum,
    part_path,
    place_from,
)

PAYLOAD = bytes(range(256)) * 1000  # 256000 bytes
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves server.root; honours "Range: bytes=N-" (206) unless server.ignore_range.

    server.truncate_at: when set, send the full Content-Length but close after that many bytes.
    """

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        path = Path(srv.root) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if srv.truncate_at is not None:
            self.wfile.write(body[: srv.truncate_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.root, srv.ignore_range, srv.truncate_at, srv.requests = root, False, None, []
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/data.bin"


def test_md5sum(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(PAYLOAD)
    assert md5sum(p) == PAYLOAD_MD5
    assert part_path(tmp_path / "a.tar.gz").name == "a.tar.gz.part"
    assert part_path(tmp_path / "abc").name == "abc.part"


def test_full_download(server, tmp_path):
    dest = tmp_path / "out" / "data.bin"
    assert download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()
    # present with a good md5: nothing is fetched again
    n = len(server.requests)
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert len(server.requests) == n


def test_progress_bar_runs(server, tmp_path, capsys):
    dest = tmp_path / "data.bin"
    download_file([server.url + "data.bin"], dest, None, progress=True)
    assert dest.read_bytes() == PAYLOAD


def test_resume_from_part(server, tmp_path):
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(PAYLOAD[:100000])
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=100000-"
    assert not part_path(dest).exists()


def test_server_ignoring_range_restarts(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(PAYLOAD[:100000])
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_gets_416(server, tmp_path):
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(PAYLOAD)
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_stale_part_restarts_from_scratch(server, tmp_path):
    dest = tmp_path / "data.bin"
    part_path(dest).write_bytes(b"\xff" * 5000)  # not a prefix of the file
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_then_resumed(server, tmp_path):
    dest = tmp_path / "data.bin"
    server.truncate_at = 70000
    with pytest.raises(DownloadError):
        download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False, timeout=5)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == PAYLOAD[:70000]
    server.truncate_at = None
    download_file([server.url + "data.bin"], dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1][1] == "bytes=70000-"


def test_md5_mismatch(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="md5 mismatch") as e:
        download_file([server.url + "data.bin"], dest, "0" * 32, progress=False)
    assert "data.bin" in str(e.value)
    assert not dest.exists() and not part_path(dest).exists()


def test_falls_back_to_next_mirror(server, tmp_path, closed_port_url):
    dest = tmp_path / "data.bin"
    urls = [closed_port_url, server.url + "missing.bin", server.url + "data.bin"]
    download_file(urls, dest, PAYLOAD_MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_offline_error_message(tmp_path, closed_port_url, server):
    dest = tmp_path / "sub" / "data.bin"
    urls = [closed_port_url, server.url + "missing.bin"]
    with pytest.raises(DownloadError) as e:
        download_file(urls, dest, PAYLOAD_MD5, progress=False, timeout=5, dataset="nmnist")
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert "data.bin" in msg
    for u in urls:
        assert u in msg
    assert "HTTP 404" in msg
    assert str(dest) in msg
    assert "plstm download nmnist --from DIR" in msg
    assert PAYLOAD_MD5 in msg
    assert not dest.exists()


def test_place_from_ok(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.bin").write_bytes(PAYLOAD)
    (src / "b.bin").write_bytes(b"hello")
    out = place_from(src, ["a.bin", "b.bin"], dst, {"a.bin": PAYLOAD_MD5})
    assert out == [dst / "a.bin", dst / "b.bin"]
    assert (dst / "a.bin").read_bytes() == PAYLOAD and (dst / "b.bin").read_bytes() == b"hello"
    assert not list(dst.glob("*.part"))
    # same folder as source and destination: a no-op
    assert place_from(dst, ["a.bin"], dst, {"a.bin": PAYLOAD_MD5}) == [dst / "a.bin"]


def test_place_from_missing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(PAYLOAD)
    with pytest.raises(FileNotFoundError, match=r"b\.bin") as e:
        place_from(src, ["a.bin", "b.bin"], tmp_path / "dst", {})
    assert str(src) in str(e.value)
    assert not (tmp_path / "dst" / "a.bin").exists()


def test_place_from_bad_checksum(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ChecksumError, match=r"a\.bin") as e:
        place_from(src, ["a.bin"], dst, {"a.bin": PAYLOAD_MD5})
    assert isinstance(e.value, DownloadError) and PAYLOAD_MD5 in str(e.value)
    assert not (dst / "a.bin").exists()


def test_a_download_over_plain_http_says_so(server, tmp_path, closed_port_url):
    said = []
    https = closed_port_url.replace("http://", "https://")
    download_file([https, server.url + "data.bin"], tmp_path / "data.bin", None, progress=False,
                  echo=said.append)
    assert len(said) == 1 and said[0].startswith("note: data.bin came over plain http")
    assert "after https failed" in said[0] and "no published checksum" in said[0]
