"""Reads IDX files (the MNIST / Fashion-MNIST format), plain or gzipped."""

import gzip
import os

import numpy as np

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class CorruptDataError(ValueError):
    """A data file exists but its content is not what its format promises."""


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise CorruptDataError(
            f"{path} cannot be read as an IDX file ({error}). Delete it and "
            f"fetch the data again."
        ) from error
    return raw


def read_idx(path):
    """Returns the array stored in an IDX file.

    Args:
        path: str. An IDX file, optionally gzip-compressed.

    Returns:
        np.ndarray with the file's dtype and shape.

    Raises:
        FileNotFoundError: if `path` does not exist.
        CorruptDataError: (a `ValueError`) if the header or length is wrong.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CorruptDataError(
            f"{path} is not an IDX file: it must start with two zero bytes, "
            f"a type byte and a rank byte; it starts with {raw[:4]!r}."
        )
    type_code, rank = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise CorruptDataError(
            f"{path} has unknown IDX type code {type_code:#04x}; known: "
            f"{[hex(c) for c in _IDX_DTYPES]}."
        )
    header = 4 + 4 * rank
    if rank < 1 or len(raw) < header:
        raise CorruptDataError(
            f"{path} is truncated in its IDX header (rank {rank}, {len(raw)} bytes)."
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)
    )
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise CorruptDataError(
            f"{path} declares shape {shape} ({expected} bytes with header) "
            f"but holds {len(raw)} bytes: the file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
