"""Loading data: IDX files, (Fashion-)MNIST, the bundled sample, batching.

``load_fashion_mnist()`` / ``load_mnist()`` look for the four IDX files
(``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``) in, in order:

1. the ``root`` argument (the directory itself, or ``root/<name>``);
2. ``$NNUMPY_DATA/<name>``;
3. the user cache ``$XDG_CACHE_HOME/nnumpy/<name>`` (default ``~/.cache/nnumpy/<name>``);
4. the Debian package location (``/usr/share/datasets/fashion-mnist``, from
   ``apt install dataset-fashion-mnist``);
5. otherwise they are downloaded from the official source into the cache
   (atomically; checksums verified against the constants below).

``load_sample()`` needs nothing: it reads a small, class-balanced subset of
Fashion-MNIST shipped inside the package.

Example:
    >>> (x, y), (xt, yt) = load_sample()
    >>> x.shape, x.dtype.name, y.dtype.name
    ((5000, 28, 28), 'uint8', 'int64')
    >>> xb, yb = next(iter(DataLoader(normalize(x), y, batch_size=32, shuffle=True, rng=0)))
    >>> xb.shape, yb.shape
    ((32, 1, 28, 28), (32,))
"""

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "DataSource",
    "read_idx",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample",
    "load_dataset",
    "find_dataset",
    "dataset_locations",
    "DataLoader",
    "one_hot",
    "to_labels",
    "normalize",
    "train_val_split",
    "FASHION_MNIST_CLASSES",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Official sources. Override with the ``base_url`` argument or $NNUMPY_DATA_URL.
BASE_URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}

# Where Debian/Ubuntu packages install the files (package name, directory).
SYSTEM_LOCATIONS = {
    "fashion-mnist": [("dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist")],
    "mnist": [],
}

# Checksums of downloads, as (algorithm, what is hashed, hex digest).
# Fashion-MNIST: SHA-256 of the *decompressed* IDX payload, computed from the
# files of the Debian package dataset-fashion-mnist (whose .gz files are
# recompressed, so hashing the payload rather than the .gz is what lets the
# same constants verify both). MNIST: no published SHA-256 of the payload was
# found, so the downloads are verified with the published MD5 of the .gz files
# (the values torchvision uses for the ossci-datasets mirror). Tests replace
# entries of this table to exercise the checks.
CHECKSUMS = {
    "fashion-mnist": {
        "train-images-idx3-ubyte": (
            "sha256",
            "payload",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte": (
            "sha256",
            "payload",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte": (
            "sha256",
            "payload",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte": (
            "sha256",
            "payload",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte": ("md5", "gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte": ("md5", "gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte": ("md5", "gz", "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte": ("md5", "gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
}

DOWNLOAD_TIMEOUT = 60  # seconds without data before a download gives up

SAMPLE_PATH = Path(__file__).parent / "datasets" / "fashion_mnist_sample.npz"

# Fashion-MNIST training-set statistics of pixel/255.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


class DatasetError(Exception):
    """A dataset cannot be found, downloaded or read; the message says which
    file, what is wrong and what to do."""


class DataSource(str):
    """A description of the data that was loaded (a ``str``, printable as is)
    with details as attributes: ``name`` ('fashion-mnist', 'mnist', 'sample'
    or 'idx'), ``path`` (directory or file, or None), ``is_sample``,
    ``n_train``, ``n_test``."""

    def __new__(cls, text, *, name, path, n_train, n_test):
        self = super().__new__(cls, text)
        self.name, self.path, self.n_train, self.n_test = name, path, n_train, n_test
        self.is_sample = name == "sample"
        return self


# ------------------------------------------------------------------ IDX files
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path):
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise DatasetError(
                f"{path}: corrupt or truncated gzip data ({error}); delete it and fetch it again"
            ) from None
    if path.suffix == ".gz":
        raise DatasetError(f"{path}: named .gz but is not gzip-compressed (corrupt download?)")
    return raw


def _parse_idx(data, path):
    if len(data) < 4:
        raise DatasetError(f"{path}: too short for an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise DatasetError(
            f"{path}: not an IDX file (magic number 0x{data[:4].hex()}; expected 0x0000 then a type code "
            f"in {sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions)"
        )
    if not 1 <= ndim <= 8:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to 8)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header (expected {header} bytes, file has {len(data)})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DatasetError(
            f"{path}: truncated: the header declares shape {dims} ({expected} bytes of data), "
            f"but only {found} bytes follow; delete it and fetch it again"
        )
    if found > expected:
        raise DatasetError(f"{path}: {found - expected} unexpected bytes after the {dims} array (corrupt file)")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path):
    """Read an IDX file (``.gz`` or raw) into a NumPy array.

    The header is checked (magic number, dtype code, number of dimensions) and
    the data size must match the declared shape exactly.

    Raises:
        DatasetError: missing, truncated or corrupt file, naming the file and
            what is wrong.
    """
    return _parse_idx(_read_bytes(path), Path(path))


# ------------------------------------------------------------------ locating
def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnumpy"


def _files_in(directory):
    """``{key: path}`` of the IDX files found in ``directory`` (gz preferred)."""
    found = {}
    for key, stem in FILES.items():
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    return found


def _check_name(name):
    if name not in BASE_URLS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(BASE_URLS)}")


def dataset_locations(name="fashion-mnist", root=None):
    """Where ``load_<name>`` looks, in order, as a list of dicts
    ``{"where": ..., "path": str, "found": bool, "missing": [file names]}``
    (what ``nnumpy info`` prints)."""
    _check_name(name)
    places = []
    if root is not None:
        places += [("root argument", Path(root) / name), ("root argument", Path(root))]
    if os.environ.get("NNUMPY_DATA"):
        places.append(("$NNUMPY_DATA", Path(os.environ["NNUMPY_DATA"]) / name))
    places.append(("user cache", _cache_dir() / name))
    places += [(f"Debian package {package}", Path(directory)) for package, directory in SYSTEM_LOCATIONS[name]]
    result = []
    for where, directory in places:
        found = _files_in(directory) if directory.is_dir() else {}
        missing = [FILES[k] for k in FILES if k not in found]
        result.append({"where": where, "path": str(directory), "found": not missing, "missing": missing})
    return result


def find_dataset(name="fashion-mnist", root=None):
    """The first directory holding all four files of ``name`` (Path), or None.
    Never downloads."""
    for place in dataset_locations(name, root):
        if place["found"]:
            return Path(place["path"])
    return None


# ------------------------------------------------------------------ download
def _verify(name, stem, gz_bytes, payload):
    entry = CHECKSUMS.get(name, {}).get(stem)
    if entry is None:
        return None
    algorithm, what, expected = entry
    actual = hashlib.new(algorithm, gz_bytes if what == "gz" else payload).hexdigest()
    if actual != expected:
        hashed = "downloaded .gz" if what == "gz" else "decompressed data"
        return f"{algorithm} of the {hashed} is {actual}, expected {expected}"
    return None


def _download(name, base_url, directory):
    """Download the missing files of ``name`` into ``directory``, atomically."""
    from .serialization import atomic_write

    directory.mkdir(parents=True, exist_ok=True)
    present = _files_in(directory)
    for key, stem in FILES.items():
        if key in present:
            continue
        url = base_url.rstrip("/") + "/" + stem + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                gz_bytes = response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise DatasetError(f"downloading {url} failed: {getattr(error, 'reason', error)}") from None
        except Exception as error:  # http.client.IncompleteRead and friends
            raise DatasetError(f"downloading {url} failed (truncated transfer?): {error}") from None
        target = directory / f"{stem}.gz"
        try:
            payload = gzip.decompress(gz_bytes)
        except (EOFError, OSError, zlib.error) as error:
            raise DatasetError(f"downloaded {url} is not valid gzip data (truncated or corrupt: {error})") from None
        problem = _verify(name, stem, gz_bytes, payload)
        if problem:
            raise DatasetError(f"downloaded {url} failed its checksum: {problem}; nothing was saved")
        _parse_idx(payload, url)  # header and size sanity before it lands in the cache
        with atomic_write(target) as f:
            f.write(gz_bytes)
    return directory


# ------------------------------------------------------------------ loading
def _read_split(directory, name):
    files = _files_in(Path(directory))
    missing = [FILES[k] for k in FILES if k not in files]
    if missing:
        raise DatasetError(f"{directory}: missing {', '.join(missing)} (.gz or raw IDX files)")
    arrays = {key: read_idx(path) for key, path in files.items()}
    result = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        ipath, lpath = files[f"{split}_images"], files[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(f"{ipath}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1:
            raise DatasetError(f"{lpath}: expected labels of shape (N,), got {labels.shape}")
        if len(labels) != len(images):
            raise DatasetError(f"{lpath}: {len(labels)} labels for the {len(images)} images of {ipath}")
        result.append((images, labels.astype(np.int64)))
    return tuple(result)


def _load(name, root, download, base_url):
    _check_name(name)
    directory = find_dataset(name, root)
    if directory is None:
        base_url = base_url or os.environ.get("NNUMPY_DATA_URL") or BASE_URLS[name]
        if not download:
            raise _not_found(name, root, "downloading is disabled (download=False)")
        try:
            directory = _download(name, base_url, _cache_dir() / name)
        except DatasetError as error:
            raise _not_found(name, root, str(error)) from None
    data = _read_split(directory, name)
    return data, directory


def _not_found(name, root, reason):
    looked = "\n".join(
        f"  - {p['where']}: {p['path']}"
        + ("" if not Path(p["path"]).is_dir() else f" (missing {', '.join(p['missing'])})")
        for p in dataset_locations(name, root)
    )
    hints = [f"set $NNUMPY_DATA to a directory holding {name}/train-images-idx3-ubyte.gz etc."]
    hints += [f"install the Debian package: apt install {package}" for package, _ in SYSTEM_LOCATIONS[name]]
    hints.append(f"or allow the download from {BASE_URLS[name]} (override with $NNUMPY_DATA_URL)")
    hints.append("or use the bundled sample (load_sample(), --dataset sample)")
    return DatasetError(f"{name} not found. Looked in:\n{looked}\n{reason}.\nTo get it: " + "; ".join(hints))


def load_fashion_mnist(root=None, *, download=True, base_url=None):
    """Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``: uint8
    images ``(60000, 28, 28)`` / ``(10000, 28, 28)`` and int64 labels 0-9
    (``FASHION_MNIST_CLASSES`` names them). See the module docstring for where
    the files are looked for; raises ``DatasetError`` when they cannot be had.
    """
    return _load("fashion-mnist", root, download, base_url)[0]


def load_mnist(root=None, *, download=True, base_url=None):
    """MNIST digits, same structure and lookup as ``load_fashion_mnist``
    (no Debian location; downloads from the ossci-datasets mirror)."""
    return _load("mnist", root, download, base_url)[0]


def load_sample():
    """The Fashion-MNIST sample bundled with nnumpy: 5,000 training and 1,000
    test images, the first 500 / 100 of each class of the official files (in
    file order), as ``((x_train, y_train), (x_test, y_test))``."""
    try:
        with np.load(SAMPLE_PATH, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"].astype(np.int64)), (f["x_test"], f["y_test"].astype(np.int64))
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"{SAMPLE_PATH}: the bundled sample is missing or damaged ({error})") from None


def load_dataset(name_or_dir="fashion-mnist", root=None, *, download=True, base_url=None):
    """Load by name: 'fashion-mnist', 'mnist', 'sample', or a directory of IDX files.

    Returns ``(((x_train, y_train), (x_test, y_test)), source)`` where
    ``source`` is a ``DataSource``: a readable string such as
    ``"full Fashion-MNIST from /usr/share/datasets/fashion-mnist (60000 train / 10000 test)"``
    or ``"bundled Fashion-MNIST sample (5000 train / 1000 test)"``, with
    ``.is_sample``, ``.name``, ``.path``, ``.n_train``, ``.n_test``.
    """
    key = str(name_or_dir).lower().replace("_", "-")
    titles = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}
    if key == "sample":
        data = load_sample()
        text, name, path = "bundled Fashion-MNIST sample", "sample", str(SAMPLE_PATH)
    elif key in titles:
        data, directory = _load(key, root, download, base_url)
        text, name, path = f"full {titles[key]} from {directory}", key, str(directory)
    elif Path(name_or_dir).is_dir():
        data = _read_split(Path(name_or_dir), "idx")
        text, name, path = f"IDX files from {name_or_dir}", "idx", str(name_or_dir)
    else:
        raise DatasetError(
            f"unknown dataset {name_or_dir!r}: expected 'fashion-mnist', 'mnist', 'sample' or a directory of IDX files"
        )
    n_train, n_test = len(data[0][0]), len(data[1][0])
    text = f"{text} ({n_train} train / {n_test} test)"
    source = DataSource(text, name=name, path=path, n_train=n_train, n_test=n_test)
    return data, source


# ------------------------------------------------------------------ helpers
def one_hot(labels, n_classes=None, dtype=np.float32):
    """``(N,)`` integer labels -> ``(N, n_classes)`` one-hot rows
    (``n_classes`` defaults to ``max(labels) + 1``).

    Example:
        >>> one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"one_hot: expected a 1-D array of integer labels, got {labels.dtype} {labels.shape}")
    if n_classes is None:
        n_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"one_hot: labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def to_labels(y):
    """Class labels ``(N,)`` int64 from one-hot / probability rows ``(N, C)``
    (argmax) or from labels already."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1).astype(np.int64)
    if y.ndim == 1:
        return y.astype(np.int64)
    raise ValueError(f"to_labels: expected (N,) labels or (N, C) rows, got shape {y.shape}")


def normalize(images, mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD, *, flatten=False, dtype=np.float32):
    """Images -> standardised floats ``(x / 255 - mean) / std``.

    uint8 input is scaled to [0, 1] first; float input is taken as already in
    [0, 1]. ``(N, H, W)`` becomes ``(N, 1, H, W)`` (for convolutions), or
    ``(N, H*W)`` with ``flatten=True`` (for an MLP).
    """
    x = np.asarray(images)
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(dtype) * dtype(scale / std) - dtype(mean / std)
    if flatten:
        return x.reshape(x.shape[0], -1)
    return x[:, None] if x.ndim == 3 else x


def train_val_split(x, y, val_size=5000, seed=0, *, rng=None):
    """Split off a random validation set: returns ``((x_train, y_train), (x_val, y_val))``.

    ``val_size`` is a count or a fraction in (0, 1); the split is a seeded
    permutation (``seed``, or the Generator ``rng``), so it is reproducible.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"train_val_split: {n} examples but {len(y)} labels")
    count = int(round(val_size * n)) if isinstance(val_size, float) and 0 < val_size < 1 else int(val_size)
    if not 0 <= count < n:
        raise ValueError(f"train_val_split: val_size must leave training data: got {val_size!r} for {n} examples")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(seed if rng is None else rng)
    order = generator.permutation(n)
    val, train = np.sort(order[:count]), np.sort(order[count:])
    return (x[train], y[train]), (x[val], y[val])


# ------------------------------------------------------------------ batching
class DataLoader:
    """Mini-batches ``(xb, yb)`` over arrays ``x``, ``y`` (first axis = examples).

    The shuffle order of an epoch is a pure function of ``(seed, epoch)``:
    ``np.random.default_rng([seed, epoch]).permutation(n)``, so a run is
    reproducible and resumable, and a distributed sampler can shard
    ``indices()`` by overriding it. The epoch advances by one after every
    complete pass; ``set_epoch(e)`` sets it (as PyTorch's samplers do).
    ``state_dict()`` records ``(seed, epoch, position)``: loading it in the
    middle of an epoch makes the next pass resume at the following batch.

    Args:
        x, y: arrays of equal length (``y`` may be None: batches are ``(xb, None)``).
        batch_size: examples per batch (the last one may be smaller).
        shuffle: reshuffle every epoch.
        drop_last: drop the last, incomplete batch.
        rng: an int seed, a ``numpy.random.Generator`` (one seed is drawn
            from it) or None (drawn from nnumpy's default generator, which
            ``nnumpy.manual_seed`` controls).
    """

    def __init__(self, x, y=None, batch_size=128, shuffle=False, drop_last=False, rng=None):
        from .backend import default_rng

        if y is not None and len(y) != len(x):
            raise ValueError(f"DataLoader: {len(x)} examples but {len(y)} labels")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if isinstance(rng, (int, np.integer)):
            self.seed = int(rng)
        else:
            generator = rng if isinstance(rng, np.random.Generator) else default_rng()
            self.seed = int(generator.integers(2**63))
        self.epoch = 0
        self._position = 0  # batches handed out in the current pass
        self._resume_at = 0  # first batch of the next pass (set by load_state_dict)

    @property
    def num_samples(self):
        """Examples per epoch (a distributed subclass returns its shard's size)."""
        return len(self.x)

    def indices(self, epoch=None):
        """The order of examples for ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(len(self.x))

    def set_epoch(self, epoch):
        """Use the shuffle order of ``epoch`` for the next pass, from its start."""
        self.epoch = int(epoch)
        self._position = self._resume_at = 0

    def __len__(self):
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = None if not self.shuffle and type(self).indices is DataLoader.indices else self.indices()
        start, self._resume_at = self._resume_at, 0
        for b in range(start, len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.num_samples)
            self._position = b + 1
            if order is None:  # contiguous slices: views, no copy
                xb, yb = self.x[lo:hi], None if self.y is None else self.y[lo:hi]
            else:
                idx = order[lo:hi]
                xb, yb = self.x[idx], None if self.y is None else self.y[idx]
            yield xb, yb
        self.epoch += 1
        self._position = 0

    def state_dict(self):
        """``{"seed", "epoch", "position"}`` (JSON-able)."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self._position}

    def load_state_dict(self, state):
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._position = self._resume_at = int(state.get("position", 0))

    def __repr__(self):
        return (
            f"DataLoader({self.num_samples} examples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch})"
        )
