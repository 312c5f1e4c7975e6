"""IDX files (the format of (Fashion-)MNIST): ``read_idx`` and ``parse_idx``,
and ``DatasetError``, which every failure to find or read data raises."""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "read_idx", "parse_idx"]


class DatasetError(Exception):
    """A dataset cannot be found, downloaded or read; the message says which
    file, what is wrong and what to do."""


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


def parse_idx(data, path):
    """An IDX file's bytes (uncompressed) -> array; ``path`` names it in errors."""
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
    return parse_idx(_read_bytes(path), Path(path))
