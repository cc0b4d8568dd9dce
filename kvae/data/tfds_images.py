"""Image datasets through tensorflow-datasets: celeba (official partition,
cropped and resized to 64x64 as the originals), cifar10, mnist and
fashion_mnist. Downloads and prepares on first use."""

import os
from pathlib import Path

import numpy as np

from kvae.data.errors import DataError

TFDS_NAMES = {
    "celeba": "celeb_a",
    "cifar10": "cifar10",
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
}
"""kvae's dataset names and the tfds builders behind them."""

IMAGE_SHAPES = {
    "celeba": (64, 64, 3),
    "cifar10": (32, 32, 3),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
}

VALIDATION_SPLITS = {"celeba": "validation"}
"""The split used for validation loss and pictures: CelebA's official
validation partition; the test split for the others, which have no
validation split (the originals train on the whole training split)."""

CELEBA_CROP = (slice(45, 173), slice(25, 153))
"""Rows 45-172 and columns 25-152 of the aligned 218x178 faces: the centred
128x128 crop of both originals (original-code.md A.6, B.5)."""

CELEBA_SIDE = 64

CELEBA_FILES = (
    "img_align_celeba.zip",
    "list_eval_partition.txt",
    "list_attr_celeba.txt",
    "list_landmarks_align_celeba.txt",
    "identity_CelebA.txt",
)


def celeba_crop_resize(image):
    """One aligned CelebA face (218, 178, 3) uint8 -> (64, 64, 3) uint8.

    The originals crop [45:173, 25:153] and resize with PIL's BILINEAR, an
    antialiased (triangle) filter on downscaling; tf.image.resize with
    antialias=True computes the same filter (tested against PIL within one
    grey level). Plain bilinear without antialias would average only 2x2
    pixels and differ.
    """
    import tensorflow as tf

    crop = image[CELEBA_CROP[0], CELEBA_CROP[1], :]
    resized = tf.image.resize(crop, (CELEBA_SIDE, CELEBA_SIDE), method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def _celeba_help(data_dir, error):
    import tensorflow_datasets as tfds

    root = Path(data_dir) if data_dir else Path(tfds.core.constants.DATA_DIR)
    manual = root / "downloads" / "manual"
    return (
        f"CelebA could not be downloaded ({type(error).__name__}; Google Drive quotas "
        f"are common). Place {', '.join(CELEBA_FILES)} from "
        f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html in {manual} and run again."
    )


def load_tfds_images(name, split, data_dir=None):
    """uint8 images (N, H, W, C) of a tfds dataset's split, preprocessed
    (CelebA cropped and resized to 64x64). Downloads and prepares the
    dataset on first use, from `data_dir/downloads/manual` when the files
    are there."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder_name = TFDS_NAMES[name]
    download_config = None
    if data_dir is not None:
        download_config = tfds.download.DownloadConfig(
            manual_dir=os.path.join(os.fspath(data_dir), "downloads", "manual")
        )
    try:
        dataset = tfds.load(
            builder_name,
            split=split,
            data_dir=data_dir,
            download_and_prepare_kwargs={"download_config": download_config},
        )
    except Exception as error:  # noqa: BLE001 - tfds raises many kinds; all end the same way
        if name == "celeba":
            raise DataError(_celeba_help(data_dir, error)) from error
        raise DataError(
            f"Could not load {builder_name!r} with tensorflow-datasets: "
            f"{type(error).__name__}: {error}"
        ) from error
    images = dataset.map(lambda example: example["image"], num_parallel_calls=tf.data.AUTOTUNE)
    if name == "celeba":
        images = images.map(celeba_crop_resize, num_parallel_calls=tf.data.AUTOTUNE)
    batches = [batch for batch in images.batch(1024).prefetch(2).as_numpy_iterator()]
    if not batches:
        raise DataError(f"The {split!r} split of {builder_name!r} is empty.")
    return np.concatenate(batches)
