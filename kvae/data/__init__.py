"""Datasets for training and evaluation, by name (`load`, `load_split`).

One module per source, chosen by name through `SOURCES`:

- `tfds_images`: celeba (tfds `celeb_a`, official partition, cropped and
  resized to 64x64 as the originals), cifar10, mnist, fashion_mnist;
- `idx`: mnist and fashion_mnist from their original idx files (a
  --data-dir, KVAE_DATA_DIR, or Debian's `dataset-fashion-mnist` folder),
  preferred to tfds when found;
- `imagefolder`: `imagefolder:PATH`, any folder of images;
- `emoji`: `emoji` or `emoji:STYLE,...`, colour emoji from the packages
  that ship them (Noto, Twemoji, Fluent 3-D), split by emoji;
- `synthetic`: `manifold2d` and `sphere` (Berger & Sebag 2020);
- `latents`: stage 2's data, the stage-1 posteriors (`LatentDataset`).

Images are kept in memory as uint8 and served as float32 in [0, 1] by the
tf.data pipelines of `pipeline` (`Dataset`). TensorFlow and tfds are
imported only when a pipeline or a tfds dataset is needed.
"""

from pathlib import Path

from kvae.data import emoji, idx, synthetic, tfds_images
from kvae.data.errors import DataError
from kvae.data.idx import (
    DEBIAN_FASHION_MNIST,
    idx_folder,
    load_idx_images,
    load_idx_labels,
    read_idx,
)
from kvae.data.imagefolder import center_crop_resize, load_image_folder
from kvae.data.latents import LatentDataset
from kvae.data.pipeline import Dataset, as_float
from kvae.data.synthetic import sample_manifold2d, sample_sphere
from kvae.data.tfds_images import IMAGE_SHAPES, TFDS_NAMES, celeba_crop_resize
from kvae.errors import did_you_mean

SYNTHETIC = ("manifold2d", "sphere")

DATASETS = (*TFDS_NAMES, "imagefolder:PATH", "emoji[:STYLES]", *SYNTHETIC)
"""Every dataset name the training command takes."""

SOURCES = {
    **{name: "tfds_images" for name in TFDS_NAMES},
    "imagefolder": "imagefolder",
    "emoji": "emoji",
    **{name: "synthetic" for name in SYNTHETIC},
}
"""The source module of each dataset family; mnist and fashion_mnist switch
to `idx` when their idx files are found (`source`)."""

SPLITS = {"celeba": ("train", "validation", "test"), "imagefolder": ("train", "validation")}
"""The splits `load_split` takes; the others have train and test (and
"validation" names the test split, as in training), synthetic data a fresh
seeded sample for each of train, validation and test."""

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "IMAGE_SHAPES",
    "SOURCES",
    "SPLITS",
    "SYNTHETIC",
    "TFDS_NAMES",
    "DataError",
    "Dataset",
    "LatentDataset",
    "as_float",
    "attributions",
    "background",
    "celeba_crop_resize",
    "center_crop_resize",
    "check_name",
    "data_shape",
    "idx_folder",
    "load",
    "load_idx_images",
    "load_idx_labels",
    "load_image_folder",
    "load_split",
    "read_idx",
    "sample_manifold2d",
    "sample_sphere",
    "source",
]


def family(name):
    """The dataset family of a name: "imagefolder" for imagefolder:PATH,
    "emoji" for emoji:STYLES."""
    for prefix in ("imagefolder", "emoji"):
        if name.startswith(prefix + ":"):
            return prefix
    return name


def source(name, data_dir=None):
    """The name of the module that loads `name` (see SOURCES)."""
    if name in ("mnist", "fashion_mnist") and idx_folder(name, data_dir) is not None:
        return "idx"
    return SOURCES[family(check_name(name))]


def check_name(name):
    """The dataset name, or a DataError listing the known ones."""
    if name.startswith("imagefolder:"):
        if not name[len("imagefolder:") :]:
            raise DataError("imagefolder needs a path: imagefolder:PATH.")
        return name
    if family(name) == "emoji":
        emoji.parse_name(name)
        return name
    if name not in TFDS_NAMES and name not in SYNTHETIC:
        known = (*TFDS_NAMES, *SYNTHETIC, "imagefolder", "emoji")
        hint = did_you_mean(name.replace("-", "_"), known)
        raise DataError(
            f"unknown dataset {name!r}.{hint} Expected one of {', '.join(DATASETS)}.",
            argument="dataset",
        )
    return name


ATTRIBUTIONS = {
    "fashion_mnist": "Fashion-MNIST by Zalando Research (Xiao, Rasul & Vollgraf 2017), MIT License",
    "mnist": "MNIST by Yann LeCun, Corinna Cortes and Christopher J. C. Burges",
    "celeba": "CelebA by MMLAB, The Chinese University of Hong Kong (non-commercial research use)",
    "cifar10": "CIFAR-10 by Alex Krizhevsky, Vinod Nair and Geoffrey Hinton",
}
"""Who made each dataset and under which terms, for model cards."""


def attributions(name):
    """The credits a model trained on dataset `name` carries on its card: the
    dataset's makers and licence, and for emoji every style's licence and
    attribution and what kvae changed in the pictures."""
    if family(name) == "emoji":
        return [emoji.ATTRIBUTIONS[style] for style in emoji.parse_name(name)] + [
            "The pictures were " + emoji.CHANGES + "."
        ]
    return [ATTRIBUTIONS[name]] if name in ATTRIBUTIONS else []


def background(name):
    """The RGB colour behind the pictures of dataset `name`, which transparent
    pixels of an image given to a model trained on it should take: white for
    emoji (composited on white, `emoji.BACKGROUND`), black for every other
    (Fashion-MNIST and MNIST draw light on black) and for None."""
    if name and family(name) == "emoji":
        return tuple(emoji.BACKGROUND)
    return (0, 0, 0)


def data_shape(name, image_size=64, dim=8):
    """The shape of one example, known without loading anything."""
    check_name(name)
    if family(name) in ("imagefolder", "emoji"):
        return (image_size, image_size, 3)
    if name == "manifold2d":
        return (2,)
    if name == "sphere":
        return (dim,)
    return IMAGE_SHAPES[name]


def load(name, data_dir=None, image_size=64, dim=8, radius=1.0, seed=0, synthetic_size=10000):
    """A `Dataset` by name (see DATASETS): its training split and the split
    used for validation (CelebA's validation partition, the test split of
    the others, a held-out tenth of an image folder).

    Args:
        name: "celeba", "cifar10", "mnist", "fashion_mnist" (tfds; mnist and
            fashion_mnist from idx files when found, see `idx_folder`),
            "imagefolder:PATH", "emoji[:STYLES]", "manifold2d" or "sphere".
        data_dir: the tfds data folder, or a folder of idx files.
        image_size: side of imagefolder and emoji images.
        dim, radius: the sphere's dimension D and radius R.
        seed: seeds the imagefolder split and the synthetic samples.
        synthetic_size: points in the fixed training and validation samples
            of synthetic datasets (training itself draws fresh points).
    """
    options = dict(
        data_dir=data_dir,
        image_size=image_size,
        dim=dim,
        radius=radius,
        seed=seed,
        count=synthetic_size,
    )
    train = load_split(name, "train", **options)
    validation = load_split(name, "validation", **options)
    sampler = synthetic.sampler(name, dim, radius) if name in SYNTHETIC else None
    return Dataset(name, train, validation, sampler=sampler)


def load_split(
    name, split="test", data_dir=None, image_size=64, dim=8, radius=1.0, seed=0, count=10000
):
    """The examples of one split, for evaluation: uint8 images in the
    datasets' order (no shuffling), or float32 points for synthetic data.

    Args:
        name: a dataset name (see DATASETS).
        split: "train", "validation" or "test"; see SPLITS.
        data_dir, image_size, dim, radius, seed: as `load`.
        count: the number of points drawn for a synthetic split (images
            come whole; the caller takes the first N).
    """
    check_name(name)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"data_dir {data_dir} is not a readable folder.", argument="data_dir")
    known = SPLITS.get(family(name), ("train", "validation", "test"))
    if split not in known:
        raise DataError(f"{name} has no {split!r} split; expected one of {', '.join(known)}.")
    kind = source(name, data_dir)
    if kind == "imagefolder":
        train, validation = load_image_folder(name[len("imagefolder:") :], image_size, seed=seed)
        return train if split == "train" else validation
    if kind == "emoji":
        return emoji.load_split(name, split, data_dir, image_size)
    if kind == "synthetic":
        return synthetic.load_split(name, split, seed, count, dim, radius)
    if split == "validation":
        split = tfds_images.VALIDATION_SPLITS.get(name, "test")
    if kind == "idx":
        return idx.load_split(name, split, data_dir)
    return tfds_images.load_tfds_images(name, split, data_dir)
