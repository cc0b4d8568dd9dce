"""`imagefolder:PATH`: any folder of images, centre-cropped and resized,
with a seeded tenth held out for validation."""

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from kvae.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def find_images(folder):
    """Sorted paths of the image files under `folder` (recursively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"imagefolder: {folder} is not a readable folder.")
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not paths:
        raise DataError(f"imagefolder: no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}.")
    return paths


def center_crop_resize(picture, side):
    """A PIL image -> RGB uint8 (side, side, 3): the largest centred square,
    resized with PIL's antialiased BILINEAR (the CelebA filter)."""
    picture = picture.convert("RGB")
    width, height = picture.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    picture = picture.crop((left, top, left + crop, top + crop))
    return np.asarray(picture.resize((side, side), Image.BILINEAR), dtype=np.uint8)


@functools.lru_cache(maxsize=2)  # training and evaluation read both splits
def load_image_folder(folder, side, validation_fraction=0.1, seed=0):
    """(train, validation) uint8 arrays from a folder of images: each
    centre-cropped and resized to `side`; a seeded random tenth (at least one
    image) is held out for validation."""
    paths = find_images(folder)
    if len(paths) < 2:
        raise DataError(f"imagefolder: {folder} needs at least 2 images (found 1).")
    images = []
    for path in paths:
        try:
            with Image.open(path) as picture:
                images.append(center_crop_resize(picture, side))
        except (OSError, ValueError) as error:
            raise DataError(f"imagefolder: cannot read {path}: {error}") from error
    images = np.stack(images)
    order = np.random.default_rng(seed).permutation(len(images))
    held_out = max(1, int(round(validation_fraction * len(images))))
    return images[order[held_out:]], images[order[:held_out]]
