"""The idx reader and the PNG grids."""

import numpy as np
import pytest
from PIL import Image

from helpers import write_idx
from kvae import data, images


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, array)
    loaded = data.load_idx_images(tmp_path, "train")
    assert loaded.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(loaded[..., 0], array)


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x89PNG not idx")
    with pytest.raises(ValueError, match="not an idx file"):
        data.load_idx_images(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 3, 3)))
    truncated = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()[:-1]
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(truncated)
    with pytest.raises(ValueError, match="expected 18 data bytes"):
        data.load_idx_images(tmp_path, "test")
    with pytest.raises(FileNotFoundError):
        data.load_idx_images(tmp_path / "missing", "train")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "fashion_mnist").mkdir()
    write_idx(tmp_path / "fashion_mnist" / "train-images-idx3-ubyte", np.zeros((1, 28, 28)))
    write_idx(tmp_path / "fashion_mnist" / "t10k-images-idx3-ubyte", np.zeros((1, 28, 28)))
    monkeypatch.setenv("KVAE_DATA_DIR", str(tmp_path))
    assert data.idx_folder("fashion_mnist", None) == tmp_path / "fashion_mnist"
    assert data.idx_folder("mnist", None) is None  # falls back to tfds


def test_grid_layout_and_png(tmp_path):
    tiles = np.stack([np.full((4, 4, 1), v) for v in (0.0, 0.5, 1.0, 2.0, -1.0)])
    canvas = images.grid(tiles, columns=2, padding=1)
    assert canvas.shape == (3 * 5 + 1, 2 * 5 + 1, 1) and canvas.dtype == np.uint8
    assert canvas[1, 1, 0] == 0 and canvas[1, 6, 0] == 128  # 0.5 -> 127.5 rounds to 128
    assert canvas[6, 6, 0] == 255 and canvas[11, 1, 0] == 0  # clipped: 2 -> 255, -1 -> 0
    assert canvas[11, 6, 0] == 255  # the empty cell stays white
    path = images.save_grid(tiles, tmp_path / "g.png", columns=2, scale=2)
    assert Image.open(path).size == (2 * (2 * 6 + 2), 2 * (3 * 6 + 2))
