"""Downloads of weight files from a local HTTP server on 127.0.0.1."""

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import keras_regnet
from keras_regnet.weights import download, imagenet
from keras_regnet.weights.download import DownloadError, fetch

PAYLOAD = os.urandom(1 << 20)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "ok"  # "ok", "drop" (close half-way), "slow" or "trickle" (10 B/s)
    payload = PAYLOAD
    active = 0
    max_active = 0
    requests = 0
    lock = threading.Lock()

    def do_GET(self):
        cls = type(self)
        with cls.lock:
            cls.requests += 1
            cls.active += 1
            cls.max_active = max(cls.max_active, cls.active)
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(cls.payload)))
            self.end_headers()
            body = cls.payload
            if cls.mode == "drop":
                body = body[:len(body) // 2]
            step = 1 if cls.mode == "trickle" else 1 << 16
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                if cls.mode == "slow":
                    time.sleep(0.05)
                elif cls.mode == "trickle":
                    self.wfile.flush()
                    time.sleep(0.1)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up
            if cls.mode == "drop":
                self.close_connection = True
        finally:
            with cls.lock:
                cls.active -= 1

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"lock": threading.Lock()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{httpd.server_address[1]}/regnetx002.h5"
    yield handler
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_and_caches(server, tmp_path):
    path = fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path))
    assert path == str(tmp_path / "regnetx002.h5")
    assert open(path, "rb").read() == PAYLOAD
    # A verified cached file is used without asking the server again.
    assert fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path)) == path
    assert server.requests == 1
    assert os.listdir(tmp_path) == ["regnetx002.h5"]


def test_hash_mismatch_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError) as e:
        fetch(server.url, "regnetx002.h5", "0" * 64, directory=str(tmp_path))
    assert "regnetx002.h5" in str(e.value) and server.url in str(e.value)
    assert SHA in str(e.value)
    assert os.listdir(tmp_path) == []


def test_corrupt_cached_file_is_replaced(server, tmp_path):
    (tmp_path / "regnetx002.h5").write_bytes(PAYLOAD[:1000])
    path = fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path))
    assert open(path, "rb").read() == PAYLOAD
    assert server.requests == 1


def test_connection_dropped_mid_file_leaves_no_file(server, tmp_path):
    server.mode = "drop"
    with pytest.raises(DownloadError) as e:
        fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path),
              timeout=10)
    assert server.url in str(e.value)
    assert os.listdir(tmp_path) == []


def test_offline_error_names_file_url_and_local_path_option(tmp_path):
    import socket
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/regnety016.h5"
    with pytest.raises(DownloadError) as e:
        fetch(url, "regnety016.h5", SHA, directory=str(tmp_path), timeout=5)
    message = str(e.value)
    assert "regnety016.h5" in message and url in message
    assert "weights='/path/to/regnety016.h5'" in message
    assert os.listdir(tmp_path) == []


def test_two_concurrent_processes_end_with_one_valid_file(server, tmp_path):
    server.mode = "slow"
    # The downloader module has no package imports: load it alone, so that
    # the two processes start fast and really overlap.
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("dl", {download.__file__!r})
        dl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dl)
        print(dl.fetch(sys.argv[1], "regnetx002.h5", sys.argv[2], sys.argv[3]))
    """)
    procs = [subprocess.Popen(
        [sys.executable, "-c", script, server.url, SHA, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert server.max_active == 2  # the two downloads overlapped
    assert {out.strip() for out, _ in outs} == {str(tmp_path / "regnetx002.h5")}
    assert os.listdir(tmp_path) == ["regnetx002.h5"]
    assert (tmp_path / "regnetx002.h5").read_bytes() == PAYLOAD


def test_cache_dir_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert download.cache_dir() == str(tmp_path / "kh" / "models")
    assert os.path.isdir(tmp_path / "kh" / "models")


def test_imagenet_weights_download_into_the_keras_cache_and_load(
        server, tmp_path, monkeypatch):
    tf_keras = pytest.importorskip("tf_keras", reason="needs tf-keras (Keras 2)")
    ref = tf_keras.applications.RegNetY002(
        weights=None, include_top=False, input_shape=(64, 64, 3))
    rng = np.random.default_rng(1)
    ref.set_weights([rng.uniform(0.5, 1.0, w.shape).astype("float32")
                     if w.ndim == 1 else w for w in ref.get_weights()])
    ref.save_weights(str(tmp_path / "k2.h5"))
    server.payload = (tmp_path / "k2.h5").read_bytes()
    monkeypatch.setattr(imagenet, "BASE_URL", server.url.rsplit("/", 1)[0] + "/")
    sha = hashlib.sha256(server.payload).hexdigest()
    monkeypatch.setitem(imagenet.SHA256, "RegNetY002", ("0" * 64, sha))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    x = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for _ in range(2):  # the second build uses the cached file
        model = keras_regnet.RegNetY002(
            weights="imagenet", include_top=False, input_shape=(64, 64, 3))
        diff = np.abs(np.asarray(model(x)) - ref(x).numpy()).max()
        assert diff <= 1e-4
    assert server.requests == 1
    assert os.listdir(tmp_path / "keras" / "models") == ["regnety002_notop.h5"]


def test_a_trickling_server_is_cut_off_at_the_deadline(server, tmp_path):
    server.mode = "trickle"  # each byte well within the socket timeout
    start = time.monotonic()
    with pytest.raises(DownloadError) as e:
        fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path),
              timeout=1, deadline=1.5)
    assert time.monotonic() - start < 1.5 + 1 + 1  # deadline + timeout + slack
    assert "deadline of 1.5 s" in str(e.value) and server.url in str(e.value)
    assert os.listdir(tmp_path) == []


def test_a_killed_download_leaves_no_temporary_after_the_next(server, tmp_path):
    host = socket.gethostname()
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        temps = [tmp_path / f".regnetx002.h5.tmp.{host}.{p.pid}.abcdefgh"
                 for p in (done, running)]
        for temp in temps:  # what a kill leaves: an empty file in a folder
            temp.mkdir()
            (temp / "regnetx002.h5").write_bytes(b"")
        fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path))
        assert sorted(os.listdir(tmp_path)) == [temps[1].name, "regnetx002.h5"]
    finally:
        running.kill()
        running.wait()


def test_a_folder_in_the_cache_is_never_replaced(server, tmp_path):
    (tmp_path / "regnetx002.h5").mkdir()
    (tmp_path / "regnetx002.h5" / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="`fname`: .*regnetx002.h5' is a folder"):
        fetch(server.url, "regnetx002.h5", SHA, directory=str(tmp_path))
    assert (tmp_path / "regnetx002.h5" / "mine.txt").read_text() == "keep"
    assert os.listdir(tmp_path) == ["regnetx002.h5"]
