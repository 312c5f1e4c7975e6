"""nnumpy.data: IDX reading, dataset lookup and download, the bundled sample,
batching and the small helpers. Every file is synthetic and made here; the
download tests talk to an HTTP server on 127.0.0.1 that the tests start."""

import gzip
import hashlib
import http.server
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from nnumpy import data
from nnumpy.data import DataLoader, DatasetError, datasets, read_idx


# ------------------------------------------------------------------ helpers
def idx_bytes(array, code=None):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}
    array = np.asarray(array)
    if array.dtype.kind in "iu" and array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder(">"))
    code = codes[array.dtype] if code is None else code
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path, payload, gz=True):
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def fake_split(n, seed):
    r = np.random.default_rng(seed)
    return r.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), r.integers(0, 10, size=n).astype(np.uint8)


def make_dataset(directory, n_train=30, n_test=10, gz=True, seed=0):
    """Write the four IDX files; returns their payloads by file stem."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (x, y), (xt, yt) = fake_split(n_train, seed), fake_split(n_test, seed + 1)
    payloads = {}
    for key, array in {"train_images": x, "train_labels": y, "test_images": xt, "test_labels": yt}.items():
        stem = datasets.FILES[key]
        payloads[stem] = idx_bytes(array)
        write(directory / (stem + (".gz" if gz else "")), payloads[stem], gz)
    return payloads


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: empty cache, no $NNUMPY_DATA, system location in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNUMPY_DATA", raising=False)
    monkeypatch.delenv("NNUMPY_DATA_URL", raising=False)
    system = [("dataset-fashion-mnist", str(tmp_path / "system"))]
    monkeypatch.setitem(datasets.SYSTEM_LOCATIONS, "fashion-mnist", system)
    return tmp_path


# ------------------------------------------------------------------ read_idx
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(dtype)
    path = write(tmp_path / ("a.idx" + (".gz" if gz else "")), idx_bytes(array), gz)
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert np.array_equal(out, array)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"\x00\x00\x08", "too short"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "not an IDX file"),  # wrong magic
        (b"\x00\x00\x42\x01" + b"\x00" * 8, "not an IDX file"),  # unknown dtype code
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 5), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x01" * 7, "truncated: .*only 7 bytes"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x01" * 5, "3 unexpected bytes"),
    ],
)
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_rejects_bad_files(tmp_path, payload, match, gz):
    path = write(tmp_path / "bad-idx1-ubyte", payload, gz)
    with pytest.raises(DatasetError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_or_fake_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated gzip"):
        read_idx(path)
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)))  # raw bytes under a .gz name
    with pytest.raises(DatasetError, match="not gzip-compressed"):
        read_idx(path)
    with pytest.raises(DatasetError, match="no such file"):
        read_idx(tmp_path / "missing.gz")


# ------------------------------------------------------------------ lookup
def test_lookup_order(isolated, monkeypatch):
    root, env = isolated / "root", isolated / "env"
    cache, system = isolated / "cache" / "nnumpy" / "fashion-mnist", isolated / "system"
    make_dataset(system, n_train=11)
    assert data.load_fashion_mnist(download=False)[0][0].shape == (11, 28, 28)
    make_dataset(cache, n_train=12, gz=False)
    assert data.load_fashion_mnist(download=False)[0][0].shape == (12, 28, 28)
    make_dataset(env / "fashion-mnist", n_train=13)
    monkeypatch.setenv("NNUMPY_DATA", str(env))
    assert data.load_fashion_mnist(download=False)[0][0].shape == (13, 28, 28)
    make_dataset(root, n_train=14)
    (x, y), (xt, yt) = data.load_fashion_mnist(root, download=False)
    assert x.shape == (14, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64 and xt.shape == (10, 28, 28)
    assert [p["where"] for p in data.dataset_locations("fashion-mnist", root)] == [
        "root argument",
        "root argument",
        "$NNUMPY_DATA",
        "user cache",
        "Debian package dataset-fashion-mnist",
    ]
    assert data.find_dataset("fashion-mnist", root) == root
    assert data.find_dataset("fashion-mnist") == env / "fashion-mnist"


def test_incomplete_directory_is_skipped_and_reported(isolated):
    make_dataset(isolated / "system")
    partial = isolated / "root"
    make_dataset(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.find_dataset("fashion-mnist", partial) == isolated / "system"
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte"):
        data.load_dataset(str(partial))


def test_mismatched_labels_and_images(isolated):
    make_dataset(isolated / "root")
    write(isolated / "root" / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DatasetError, match="7 labels for the 30 images"):
        data.load_fashion_mnist(isolated / "root", download=False)


def test_nothing_found_offline_says_where_and_how(isolated):
    with pytest.raises(DatasetError) as info:
        data.load_fashion_mnist(download=False)
    message = str(info.value)
    for needle in [
        "user cache",
        str(isolated / "system"),
        "apt install dataset-fashion-mnist",
        "$NNUMPY_DATA",
        "sample",
    ]:
        assert needle in message
    # download attempted but the server is unreachable (a closed loopback port)
    with pytest.raises(DatasetError, match="downloading http://127.0.0.1:9/.* failed"):
        data.load_mnist(base_url="http://127.0.0.1:9/")


# ------------------------------------------------------------------ download
class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (bytes, mode)
    requests = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        entry = self.files.get(self.path)
        if entry is None:
            self.send_error(404)
            return
        body, mode = entry
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # "truncated": announce the full length, send half, close the connection
        self.wfile.write(body[: len(body) // 2] if mode == "truncated" else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.files, _Handler.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/files/"
    httpd.shutdown()
    httpd.server_close()


def serve(tmp_path, monkeypatch, corrupt=None, truncated=None):
    """Publish a synthetic dataset with matching checksums; optionally damage one file."""
    payloads = make_dataset(tmp_path / "published", n_train=40)
    table = {stem: ("sha256", "payload", hashlib.sha256(p).hexdigest()) for stem, p in payloads.items()}
    monkeypatch.setitem(datasets.CHECKSUMS, "fashion-mnist", table)
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT", 5)
    for stem, payload in payloads.items():
        body, mode = gzip.compress(payload), "good"
        if stem == corrupt:  # valid gzip of different bytes: only the checksum can tell
            body = gzip.compress(payload[:-1] + bytes([payload[-1] ^ 0xFF]))
        if stem == truncated:
            mode = "truncated"
        _Handler.files[f"/files/{stem}.gz"] = (body, mode)
    return payloads


def test_download_into_cache(isolated, server, monkeypatch):
    _, url = server
    serve(isolated, monkeypatch)
    (x, y), (xt, yt) = data.load_fashion_mnist(base_url=url)
    assert x.shape == (40, 28, 28) and yt.shape == (10,)
    cache = isolated / "cache" / "nnumpy" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(s + ".gz" for s in datasets.FILES.values())
    assert len(_Handler.requests) == 4
    data.load_fashion_mnist(base_url=url)  # now found in the cache: no new request
    assert len(_Handler.requests) == 4


def test_download_url_from_environment(isolated, server, monkeypatch):
    _, url = server
    serve(isolated, monkeypatch)
    monkeypatch.setenv("NNUMPY_DATA_URL", url)
    (train, _), source = data.load_dataset("fashion-mnist")
    assert train[0].shape == (40, 28, 28) and str(isolated / "cache") in source and not source.is_sample


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_download_rejects_bad_files_and_keeps_cache_clean(isolated, server, monkeypatch, damage):
    _, url = server
    stem = "train-images-idx3-ubyte"
    serve(isolated, monkeypatch, **{damage: stem})
    match = "failed its checksum" if damage == "corrupt" else "truncated|not valid gzip|failed"
    with pytest.raises(DatasetError, match=match) as info:
        data.load_fashion_mnist(base_url=url)
    assert stem in str(info.value)
    cache = isolated / "cache" / "nnumpy" / "fashion-mnist"
    names = sorted(p.name for p in cache.iterdir())
    # files fetched before the bad one are complete; the bad one and no temporary file are left
    assert stem + ".gz" not in names and not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    for name in names:
        read_idx(cache / name)


def test_download_checksum_of_gz_bytes(isolated, server, monkeypatch):
    """MNIST's table holds MD5s of the .gz files; a mismatch is refused the same way."""
    _, url = server
    payloads = serve(isolated, monkeypatch)
    table = {stem: ("md5", "gz", hashlib.md5(_Handler.files[f"/files/{stem}.gz"][0]).hexdigest()) for stem in payloads}
    table["t10k-labels-idx1-ubyte"] = ("md5", "gz", "0" * 32)
    monkeypatch.setitem(datasets.CHECKSUMS, "mnist", table)
    with pytest.raises(DatasetError, match="md5 of the downloaded .gz"):
        data.load_mnist(base_url=url)


# ------------------------------------------------------------------ sample and load_dataset
def test_sample_is_balanced_and_typed():
    (x, y), (xt, yt) = data.load_sample()
    assert x.shape == (5000, 28, 28) and xt.shape == (1000, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [500] * 10 and np.bincount(yt).tolist() == [100] * 10
    assert data.SAMPLE_PATH.stat().st_size < 4_000_000
    (_, _), source = data.load_dataset("sample")
    assert source.is_sample and source == "bundled Fashion-MNIST sample (5000 train / 1000 test)"


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_sample_is_taken_from_the_real_files():
    (x, y), (xt, yt) = data.load_sample()
    full_labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    full_images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    keep = np.sort(np.concatenate([np.flatnonzero(full_labels == c)[:100] for c in range(10)]))
    assert np.array_equal(xt, full_images[keep]) and np.array_equal(yt, full_labels[keep])


def test_load_dataset_directory_and_unknown(tmp_path):
    make_dataset(tmp_path, n_train=9, gz=False)
    ((x, _), _), source = data.load_dataset(str(tmp_path))
    assert x.shape == (9, 28, 28) and source.name == "idx" and "9 train / 10 test" in source
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'"):
        data.load_dataset("cifar")


# ------------------------------------------------------------------ DataLoader
def test_loader_batches_and_drop_last():
    x, y = np.arange(10)[:, None].astype(np.float32), np.arange(10)
    loader = DataLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate([b[1] for b in batches]), y)
    dropped = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(b[1]) for b in dropped] == [4, 4]
    assert [yb for _, yb in DataLoader(x, None, batch_size=6)] == [None, None]


def test_loader_shuffle_is_a_function_of_seed_and_epoch():
    x = np.arange(100)
    a, b = DataLoader(x, x, batch_size=7, shuffle=True, rng=3), DataLoader(x, x, batch_size=7, shuffle=True, rng=3)
    first = np.concatenate([yb for _, yb in a])
    assert sorted(first.tolist()) == list(range(100)) and not np.array_equal(first, x)
    second = np.concatenate([yb for _, yb in a])  # epoch advanced after the full pass
    assert a.epoch == 2 and not np.array_equal(first, second)
    b.set_epoch(1)
    assert np.array_equal(np.concatenate([yb for _, yb in b]), second)
    assert np.array_equal(a.indices(0), np.random.default_rng([3, 0]).permutation(100))
    c = DataLoader(x, x, shuffle=True, rng=np.random.default_rng(0))
    d = DataLoader(x, x, shuffle=True, rng=np.random.default_rng(0))
    assert c.seed == d.seed


def test_loader_state_dict_resumes_mid_epoch():
    x = np.arange(50)
    loader = DataLoader(x, x, batch_size=8, shuffle=True, rng=11)
    list(loader)
    it = iter(loader)
    seen = [next(it)[1] for _ in range(3)]
    state = loader.state_dict()
    assert state == {"seed": 11, "epoch": 1, "position": 3}
    rest = [yb for _, yb in it]
    resumed = DataLoader(x, x, batch_size=8, shuffle=True)
    resumed.load_state_dict(state)
    assert all(np.array_equal(u, v) for u, v in zip([yb for _, yb in resumed], rest, strict=True))
    assert resumed.epoch == loader.epoch == 2 and len(seen) == 3


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="10 examples but 9 labels"):
        DataLoader(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(10), np.zeros(10), batch_size=0)


# ------------------------------------------------------------------ helpers
def test_one_hot_and_to_labels():
    labels = np.array([2, 0, 1])
    encoded = data.one_hot(labels, 4)
    assert encoded.dtype == np.float32 and encoded.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    assert np.array_equal(data.to_labels(encoded), labels) and data.to_labels(labels).dtype == np.int64
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        data.one_hot(labels, 2)


def test_normalize_shapes_and_values():
    images = np.full((2, 28, 28), 255, np.uint8)
    x = data.normalize(images)
    assert x.shape == (2, 1, 28, 28) and x.dtype == np.float32
    assert np.allclose(x, (1 - 0.2860) / 0.3530)
    assert data.normalize(images, flatten=True).shape == (2, 784)
    assert np.allclose(data.normalize(images, mean=0.0, std=1.0), 1.0)


def test_train_val_split_is_seeded_and_disjoint():
    x, y = np.arange(100) * 10, np.arange(100)
    (xtr, ytr), (xva, yva) = data.train_val_split(x, y, val_size=20, seed=1)
    assert len(yva) == 20 and len(ytr) == 80 and not set(ytr) & set(yva) and np.array_equal(xva, yva * 10)
    assert np.array_equal(data.train_val_split(x, y, val_size=20, seed=1)[1][1], yva)
    assert len(data.train_val_split(x, y, val_size=0.25)[1][1]) == 25
    with pytest.raises(ValueError, match="val_size"):
        data.train_val_split(x, y, val_size=100)


# ------------------------------------------------------------------ hostile and broken IDX files (issue 14)
_BOUNDED_READ = r"""
import resource, sys, time
from nnumpy.data import DatasetError, read_idx

pages = int(open("/proc/self/statm").read().split()[0])
limit = pages * resource.getpagesize() + 128 * 2**20  # what is mapped now, plus 128 MiB
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
start = time.perf_counter()
try:
    read_idx(sys.argv[1])
except DatasetError as error:
    print("DatasetError", time.perf_counter() - start, error)
except MemoryError:
    print("MemoryError")
"""


def _read_in_a_small_child(path):
    """read_idx(path) in a child process whose address space is capped at its
    current size + 128 MiB: (outcome, seconds, message)."""
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")  # few threads: little mapped memory
    proc = subprocess.run([sys.executable, "-c", _BOUNDED_READ, str(path)], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    outcome, _, rest = proc.stdout.strip().partition(" ")
    seconds, _, message = rest.partition(" ")
    return outcome, float(seconds or "nan"), message


def _gzip_bomb(path, header, zeros):
    """A gzip file of ``header`` followed by ``zeros`` zero bytes, written in chunks (a few hundred KB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 24)
    with open(path, "wb") as f:
        f.write(packer.compress(header))
        for _ in range(zeros // len(chunk)):
            f.write(packer.compress(chunk))
        f.write(packer.flush())
    return path


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    # a header declaring 10 images, then 512 MiB of zeros: once inflated whole, now read to 10 images + 64 KiB
    header = struct.pack(">HBB3I", 0, 0x08, 3, 10, 28, 28)
    path = _gzip_bomb(tmp_path / "bomb-idx3-ubyte.gz", header, 512 << 20)
    assert path.stat().st_size < 2_000_000
    outcome, seconds, message = _read_in_a_small_child(path)
    assert outcome == "DatasetError", outcome
    assert str(path) in message and "unexpected bytes after the (10, 28, 28) array" in message
    assert seconds < 5.0  # it stops after 64 KiB of inflated data, whatever the machine's load


@pytest.mark.parametrize("gz", [True, False])
def test_declared_sizes_above_the_maximum_are_refused_before_reading(tmp_path, gz):
    # 4294967295 ** 3 elements: int64 products overflow; the maximum refuses it from the header alone
    huge = struct.pack(">HBB3I", 0, 0x0E, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(1000)
    path = write(tmp_path / "huge-idx3-ubyte", huge, gz)
    outcome, seconds, message = _read_in_a_small_child(path)
    assert outcome == "DatasetError" and seconds < 5.0
    assert str(path) in message and "above the maximum of 1,073,741,824 bytes" in message
    assert "(4294967295, 4294967295, 4294967295)" in message
    # 65536 ** 4 = 2 ** 64 elements: an int64 product wraps to 0, which an empty body once "matched"
    wrap = struct.pack(">HBB4I", 0, 0x08, 4, 65536, 65536, 65536, 65536)
    with pytest.raises(DatasetError, match="above the maximum"):
        read_idx(write(tmp_path / "wrap-idx3-ubyte", wrap, gz))
    # a genuinely larger file: max_bytes raises the limit, and a small one lowers it
    small = write(tmp_path / "small-idx1-ubyte", idx_bytes(np.zeros(100, np.uint8)), gz)
    with pytest.raises(DatasetError, match="above the maximum of 99 bytes"):
        read_idx(small, max_bytes=99)
    assert read_idx(small, max_bytes=100).shape == (100,)


def test_a_directory_named_like_an_idx_file_is_a_dataset_error(tmp_path):
    (tmp_path / "x-idx1-ubyte").mkdir()
    with pytest.raises(DatasetError, match="x-idx1-ubyte"):
        read_idx(tmp_path / "x-idx1-ubyte")


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([0, 1, 12, 3] * 5, np.uint8), r"label 12 at index 2 is outside the class range 0\.\.9"),
        (np.array([0, 1, -1, 3] * 5, np.int8), r"label -1 at index 2 is outside the class range 0\.\.9"),
    ],
)
def test_labels_outside_the_class_range_are_refused_naming_the_file(tmp_path, labels, match):
    make_dataset(tmp_path, n_train=20)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(labels))
    with pytest.raises(DatasetError, match=match) as info:
        data.load_dataset(str(tmp_path))
    assert "train-labels-idx1-ubyte.gz" in str(info.value)


def test_a_set_with_no_images_is_refused_naming_the_file(tmp_path):
    make_dataset(tmp_path, n_train=20)
    write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(0, np.uint8)))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz: the test set has no images") as info:
        data.load_dataset(str(tmp_path))
    assert "(0, 28, 28)" in str(info.value)


def test_nnumpy_train_on_bad_labels_or_no_images_exits_non_zero(tmp_path, capsys):
    from nnumpy import cli

    make_dataset(tmp_path / "bad", n_train=20)
    write(tmp_path / "bad" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(10, 10, np.uint8)))
    make_dataset(tmp_path / "empty", n_train=20)
    write(tmp_path / "empty" / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    write(tmp_path / "empty" / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(0, np.uint8)))
    for name, message in (("bad", "t10k-labels-idx1-ubyte.gz: label 10"), ("empty", "the train set has no images")):
        out = tmp_path / f"run-{name}"
        code = cli.main(["train", "--model", "mlp", "--dataset", str(tmp_path / name), "--epochs", "1",
                         "--out", str(out), "--quiet"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1 and message in err, err
        assert not (out / "model.npz").exists()
