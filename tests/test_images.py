"""kvae.images: the PNG grids."""

import numpy as np
from PIL import Image

from kvae import images


def test_grid_layout_and_png(tmp_path):
    tiles = np.stack([np.full((4, 4, 1), v) for v in (0.0, 0.5, 1.0, 2.0, -1.0)])
    canvas = images.grid(tiles, columns=2, padding=1)
    assert canvas.shape == (3 * 5 + 1, 2 * 5 + 1, 1) and canvas.dtype == np.uint8
    assert canvas[1, 1, 0] == 0 and canvas[1, 6, 0] == 128  # 0.5 -> 127.5 rounds to 128
    assert canvas[6, 6, 0] == 255 and canvas[11, 1, 0] == 0  # clipped: 2 -> 255, -1 -> 0
    assert canvas[11, 6, 0] == 255  # the empty cell stays white
    path = images.save_grid(tiles, tmp_path / "g.png", columns=2, scale=2)
    assert Image.open(path).size == (2 * (2 * 6 + 2), 2 * (3 * 6 + 2))
