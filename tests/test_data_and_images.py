"""The idx reader, the PNG grids and the quickstart's command line."""

import gzip
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kvae import data, images


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


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
    monkeypatch.setenv("KVAE_DATA_DIR", str(tmp_path))
    assert data.default_fashion_mnist_dir() == tmp_path / "fashion_mnist"


def test_grid_layout_and_png(tmp_path):
    tiles = np.stack([np.full((4, 4, 1), v) for v in (0.0, 0.5, 1.0, 2.0, -1.0)])
    canvas = images.grid(tiles, columns=2, padding=1)
    assert canvas.shape == (3 * 5 + 1, 2 * 5 + 1, 1) and canvas.dtype == np.uint8
    assert canvas[1, 1, 0] == 0 and canvas[1, 6, 0] == 128  # 0.5 -> 127.5 rounds to 128
    assert canvas[6, 6, 0] == 255 and canvas[11, 1, 0] == 0  # clipped: 2 -> 255, -1 -> 0
    assert canvas[11, 6, 0] == 255  # the empty cell stays white
    path = images.save_grid(tiles, tmp_path / "g.png", columns=2, scale=2)
    assert Image.open(path).size == (2 * (2 * 6 + 2), 2 * (3 * 6 + 2))


def test_quickstart_rejects_bad_arguments(tmp_path):
    for arguments, message in [(["--steps", "0"], "--steps must be >= 1"),
                               (["--data-dir", str(tmp_path)], "No train-images-idx3-ubyte")]:
        result = subprocess.run([sys.executable, "-m", "kvae.quickstart", *arguments],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr


def test_quickstart_trains_and_writes_a_loadable_model(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.random.default_rng(1).integers(0, 256, (64, 28, 28)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.random.default_rng(2).integers(0, 256, (20, 28, 28)))
    result = subprocess.run(
        [sys.executable, "-m", "kvae.quickstart", "--steps", "3", "--batch-size", "8",
         "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "trained 3 steps" in result.stdout
    import kvae

    model = kvae.load(tmp_path / "run" / "quickstart.keras")
    assert int(model.optimizer.iterations) == 3
    assert Image.open(tmp_path / "run" / "samples.png").size == (3 * (10 * 30 + 2), 3 * (3 * 30 + 2))
