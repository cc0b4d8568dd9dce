"""MNIST-style idx files: the reader, and where mnist and fashion_mnist are
found offline (a --data-dir, KVAE_DATA_DIR, or Debian's
`dataset-fashion-mnist` folder)."""

import gzip
import os
from pathlib import Path

import numpy as np

from kvae.data.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package puts the idx files."""

IDX_FILES = {
    "train": "train-images-idx3-ubyte",
    "test": "t10k-images-idx3-ubyte",
}

IDX_LABEL_FILES = {
    "train": "train-labels-idx1-ubyte",
    "test": "t10k-labels-idx1-ubyte",
}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read an idx file (optionally gzipped) into a NumPy array.

    Format (LeCun's MNIST page): two zero bytes, a type byte, the number of
    dimensions, each size as a big-endian uint32, then the data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: expected {expected} data bytes for shape {shape}, found {len(raw) - offset}."
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def find_idx_file(directory, split, files=IDX_FILES):
    """The idx file of `split` in `directory` (images by default; pass
    IDX_LABEL_FILES for labels), gzipped or not."""
    if split not in files:
        raise ValueError(f"Unknown split {split!r}; expected one of {', '.join(files)}.")
    directory = Path(directory)
    for name in (files[split], files[split] + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"No {files[split]}[.gz] in {directory}.")


def load_idx_images(directory, split="train"):
    """uint8 images of shape (N, 28, 28, 1) from a folder of idx files."""
    images = read_idx(find_idx_file(directory, split))
    return images[..., np.newaxis]


def load_idx_labels(directory, split="train"):
    """The class labels (N,) of a split from a folder of idx files."""
    return read_idx(find_idx_file(directory, split, IDX_LABEL_FILES)).astype(np.int64)


def idx_folder(name, data_dir):
    """The folder of idx files for mnist / fashion_mnist: `data_dir` (or its
    subfolder named after the dataset) when it holds them, then KVAE_DATA_DIR
    likewise, then Debian's Fashion-MNIST folder; None to fall back to tfds."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("KVAE_DATA_DIR"):
        roots.append(Path(os.environ["KVAE_DATA_DIR"]))
    candidates = [folder for root in roots for folder in (root / name, root)]
    if name == "fashion_mnist":
        candidates.append(DEBIAN_FASHION_MNIST)
    for folder in candidates:
        try:
            find_idx_file(folder, "train")
            find_idx_file(folder, "test")
            return folder
        except FileNotFoundError:
            continue
    return None


def load_split(name, split, data_dir=None):
    """uint8 images (N, 28, 28, 1) of a split ("train" or "test") from the
    idx folder of `name` (see `idx_folder`)."""
    folder = idx_folder(name, data_dir)
    try:
        return load_idx_images(folder, split)
    except (OSError, ValueError) as error:
        raise DataError(f"{name}: {error}") from error
