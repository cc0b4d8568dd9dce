"""Data sources. This module starts with the offline idx reader (MNIST and
Fashion-MNIST as the original idx files, e.g. Debian's package
`dataset-fashion-mnist`); the tfds datasets and tf.data pipeline build on it.
"""

import gzip
import os
from pathlib import Path

import numpy as np

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` package puts the idx files."""

IDX_FILES = {
    "train": "train-images-idx3-ubyte",
    "test": "t10k-images-idx3-ubyte",
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
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: expected {expected} data bytes for shape {shape}, found {len(raw) - offset}.")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def find_idx_file(directory, split):
    """The images idx file of `split` in `directory`, gzipped or not."""
    if split not in IDX_FILES:
        raise ValueError(f"Unknown split {split!r}; expected one of {', '.join(IDX_FILES)}.")
    directory = Path(directory)
    for name in (IDX_FILES[split], IDX_FILES[split] + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"No {IDX_FILES[split]}[.gz] in {directory}.")


def load_idx_images(directory, split="train"):
    """uint8 images of shape (N, 28, 28, 1) from a folder of idx files."""
    images = read_idx(find_idx_file(directory, split))
    return images[..., np.newaxis]


def default_fashion_mnist_dir():
    """KVAE_DATA_DIR/fashion_mnist, KVAE_DATA_DIR, or Debian's folder: the
    first that holds the training images; None if none does."""
    candidates = []
    if os.environ.get("KVAE_DATA_DIR"):
        root = Path(os.environ["KVAE_DATA_DIR"])
        candidates += [root / "fashion_mnist", root]
    candidates.append(DEBIAN_FASHION_MNIST)
    for directory in candidates:
        try:
            find_idx_file(directory, "train")
            return directory
        except FileNotFoundError:
            continue
    return None
