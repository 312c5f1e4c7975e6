"""(Fashion-)MNIST: where the files are looked for, the download, the bundled sample.

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
Fashion-MNIST shipped inside the package (``fashion_mnist_sample.npz``, made
by ``make_sample``).

Example:
    >>> (x, y), (xt, yt) = load_sample()
    >>> x.shape, x.dtype.name, y.dtype.name
    ((5000, 28, 28), 'uint8', 'int64')
"""

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .idx import MAX_IDX_BYTES, DatasetError, inflate_idx, parse_idx, read_idx

__all__ = [
    "DataSource",
    "load_fashion_mnist",
    "load_mnist",
    "load_sample",
    "load_dataset",
    "find_dataset",
    "dataset_locations",
    "read_split",
    "make_sample",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "SAMPLE_PATH",
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

SAMPLE_PATH = Path(__file__).parent / "fashion_mnist_sample.npz"

# Fashion-MNIST training-set statistics of pixel/255.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


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
    directory.mkdir(parents=True, exist_ok=True)
    present = _files_in(directory)
    for key, stem in FILES.items():
        if key in present:
            continue
        url = base_url.rstrip("/") + "/" + stem + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                gz_bytes = response.read(MAX_IDX_BYTES + 1)  # bounded: a hostile server cannot fill the memory
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise DatasetError(f"downloading {url} failed: {getattr(error, 'reason', error)}") from None
        except Exception as error:  # http.client.IncompleteRead and friends
            raise DatasetError(f"downloading {url} failed (truncated transfer?): {error}") from None
        if len(gz_bytes) > MAX_IDX_BYTES:
            raise DatasetError(f"downloading {url}: more than {MAX_IDX_BYTES:,} bytes (the maximum); refused")
        target = directory / f"{stem}.gz"
        try:
            payload = inflate_idx(gz_bytes, url)  # no further than its header declares
        except DatasetError as error:
            raise DatasetError(f"downloaded {url} is not a valid gzip-compressed IDX file: {error}") from None
        problem = _verify(name, stem, gz_bytes, payload)
        if problem:
            raise DatasetError(f"downloaded {url} failed its checksum: {problem}; nothing was saved")
        parse_idx(payload, url)  # header and size sanity before it lands in the cache
        with atomic_write(target) as f:
            f.write(gz_bytes)
    return directory


# ------------------------------------------------------------------ loading
NUM_CLASSES = 10  # (Fashion-)MNIST's, and the outputs of nnumpy train's models


def read_split(directory, name="idx", num_classes=NUM_CLASSES):
    """The four IDX files in ``directory`` as ``((x_train, y_train), (x_test, y_test))``,
    checked for shapes and dtypes, at least one image per split, and integer
    labels in ``[0, num_classes)`` (``DatasetError`` names the file otherwise)."""
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
        if len(images) == 0:
            raise DatasetError(f"{ipath}: the {split} set has no images (the header declares shape {images.shape})")
        if labels.dtype.kind not in "iu":
            raise DatasetError(f"{lpath}: expected integer class labels, got {labels.dtype}")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
            raise DatasetError(
                f"{lpath}: label {int(labels[bad])} at index {bad} is outside the class range 0..{num_classes - 1} "
                f"(labels span {low}..{high}); a corrupt file, or not a {num_classes}-class dataset"
            )
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
    data = read_split(directory, name)
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
        data = read_split(Path(name_or_dir), "idx")
        text, name, path = f"IDX files from {name_or_dir}", "idx", str(name_or_dir)
    else:
        raise DatasetError(
            f"unknown dataset {name_or_dir!r}: expected 'fashion-mnist', 'mnist', 'sample' or a directory of IDX files"
        )
    n_train, n_test = len(data[0][0]), len(data[1][0])
    text = f"{text} ({n_train} train / {n_test} test)"
    source = DataSource(text, name=name, path=path, n_train=n_train, n_test=n_test)
    return data, source


def _first_per_class(labels, per_class):
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
    return np.sort(keep)


def make_sample(source_dir, out=SAMPLE_PATH, train_per_class=500, test_per_class=100):
    """Write the bundled sample from the full Fashion-MNIST IDX files in
    ``source_dir``: the first 500 training and the first 100 test images of
    each class, in file order::

        python -c "from nnumpy.data import make_sample; make_sample('/usr/share/datasets/fashion-mnist')"
    """
    (x, y), (xt, yt) = read_split(Path(source_dir), "fashion-mnist")
    train, test = _first_per_class(y, train_per_class), _first_per_class(yt, test_per_class)
    np.savez_compressed(
        out, x_train=x[train], y_train=y[train].astype(np.uint8), x_test=xt[test], y_test=yt[test].astype(np.uint8)
    )
