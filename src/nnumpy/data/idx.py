"""IDX files (the format of (Fashion-)MNIST): ``read_idx`` and ``parse_idx``,
and ``DatasetError``, which every failure to find or read data raises.

A file is never trusted before its header is: the header is read first, the
size it declares is computed in Python integers (no overflow, whatever the
dimensions) and refused above ``MAX_IDX_BYTES`` (1 GiB; the largest file of
MNIST is 47 MB), and then no more than that many bytes are read or
decompressed, so a small hostile file (a gzip "bomb", a header declaring
``4294967295 ** 3`` elements) costs kilobytes and milliseconds, not
gigabytes. ``read_idx(path, max_bytes=...)`` reads larger files.
"""

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "read_idx", "parse_idx", "inflate_idx", "MAX_IDX_BYTES"]

MAX_IDX_BYTES = 1 << 30  # the largest IDX payload read unless max_bytes says otherwise (1 GiB)


class DatasetError(Exception):
    """A dataset cannot be found, downloaded or read; the message says which
    file, what is wrong and what to do."""


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TRAILING = 1 << 16  # bytes read past the declared data to count trailing garbage (bounded)
_GZIP_ERRORS = (EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


def _parse_header(head, path, max_bytes):
    """``(dtype, dims, header_size, data_size)`` from the first bytes of a file
    (``head`` holds at least the 4-byte magic); ``header_size`` may exceed
    ``len(head)``: the caller reads the rest and calls again."""
    if len(head) < 4:
        raise DatasetError(f"{path}: too short for an IDX file ({len(head)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise DatasetError(
            f"{path}: not an IDX file (magic number 0x{head[:4].hex()}; expected 0x0000 then a type code "
            f"in {sorted(hex(c) for c in _IDX_DTYPES)} and the number of dimensions)"
        )
    if not 1 <= ndim <= 8:
        raise DatasetError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to 8)")
    header = 4 + 4 * ndim
    if len(head) < header:
        return None, None, header, None
    dims = struct.unpack(f">{ndim}I", head[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    size = math.prod(dims) * dtype.itemsize  # Python integers: no overflow
    limit = MAX_IDX_BYTES if max_bytes is None else int(max_bytes)
    if size > limit:
        raise DatasetError(
            f"{path}: the IDX header declares shape {dims} of {dtype.name}, {size:,} bytes of data, above the "
            f"maximum of {limit:,} bytes (nnumpy.data.idx.MAX_IDX_BYTES); a corrupt or hostile file, or pass "
            f"read_idx(path, max_bytes=...) to read a genuinely larger one"
        )
    return dtype, dims, header, size


def _check_header_complete(head, header, path):
    if len(head) < header:
        raise DatasetError(f"{path}: truncated IDX header (expected {header} bytes, file has {len(head)})")


def parse_idx(data, path, max_bytes=None):
    """An IDX file's bytes (uncompressed) -> array; ``path`` names it in errors."""
    _, _, header, _ = _parse_header(data[:4], path, max_bytes)
    _check_header_complete(data, header, path)
    dtype, dims, header, expected = _parse_header(data[:header], path, max_bytes)
    found = len(data) - header
    if found < expected:
        raise DatasetError(
            f"{path}: truncated: the header declares shape {dims} ({expected} bytes of data), "
            f"but only {found} bytes follow; delete it and fetch it again"
        )
    if found > expected:
        raise DatasetError(f"{path}: {found - expected} unexpected bytes after the {dims} array (corrupt file)")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _read_bounded(stream, path, max_bytes, what="file"):
    """The bytes of one IDX file from a binary ``stream``: the header, then at
    most the declared data and one byte more (to notice trailing data)."""
    head = stream.read(4)
    _, _, header, _ = _parse_header(head, path, max_bytes)
    head += stream.read(header - 4)
    _check_header_complete(head, header, path)
    dims, size = _parse_header(head, path, max_bytes)[1::2]
    body = stream.read(size + _TRAILING)
    if len(body) > size:
        extra = len(body) - size
        count = f"{extra}" if extra < _TRAILING else f"at least {extra}"
        raise DatasetError(f"{path}: {count} unexpected bytes after the {dims} array (corrupt {what})")
    return head + body


def inflate_idx(gz_bytes, path, max_bytes=None):
    """Decompress gzip-compressed IDX bytes, no further than the header declares
    (a small file cannot inflate to gigabytes); returns the IDX bytes."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(gz_bytes)) as stream:
            return _read_bounded(stream, path, max_bytes, "gzip data")
    except _GZIP_ERRORS as error:
        raise DatasetError(f"{path}: corrupt or truncated gzip data ({error}); delete it and fetch it again") from None


def _read_bytes(path, max_bytes=None):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
            f.seek(0)
            if magic == b"\x1f\x8b":
                try:
                    with gzip.GzipFile(fileobj=f) as stream:
                        return _read_bounded(stream, path, max_bytes, "gzip data")
                except _GZIP_ERRORS as error:
                    raise DatasetError(
                        f"{path}: corrupt or truncated gzip data ({error}); delete it and fetch it again"
                    ) from None
            if path.suffix == ".gz":
                raise DatasetError(f"{path}: named .gz but is not gzip-compressed (corrupt download?)")
            return _read_bounded(f, path, max_bytes)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not an IDX file") from None
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None


def read_idx(path, max_bytes=None):
    """Read an IDX file (``.gz`` or raw) into a NumPy array.

    The header is checked (magic number, dtype code, number of dimensions)
    before anything else is read; the data it declares must be at most
    ``max_bytes`` (default ``MAX_IDX_BYTES``, 1 GiB) and match the file
    exactly. No more than the declared size is read or decompressed.

    Raises:
        DatasetError: missing, truncated, oversized or corrupt file, naming
            the file and what is wrong.
    """
    return parse_idx(_read_bytes(path, max_bytes), Path(path), max_bytes)
