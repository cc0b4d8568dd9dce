"""Datasets for training and evaluation, by name (`load`).

- tfds: celeba (tfds `celeb_a`, official partition, cropped and resized to
  64x64 as the originals), cifar10, mnist, fashion_mnist;
- offline: mnist and fashion_mnist from their original idx files (a
  --data-dir, KVAE_DATA_DIR, or Debian's `dataset-fashion-mnist` folder),
  and `imagefolder:PATH` for any folder of images;
- synthetic: `manifold2d` and `sphere` (Berger & Sebag 2020).

Images are kept in memory as uint8 and served as float32 in [0, 1] by
tf.data pipelines (`Dataset`). TensorFlow and tfds are imported only when a
pipeline or a tfds dataset is needed.
"""

import gzip
import os
from pathlib import Path

import numpy as np
from PIL import Image

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
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: expected {expected} data bytes for shape {shape}, found {len(raw) - offset}.")
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


# -- errors --------------------------------------------------------------------


class DataError(Exception):
    """The data cannot be loaded as asked (unknown name, unreadable folder,
    no images, failed download). The message says what to do; the training
    command prints it as one line and exits with code 2."""


# -- the datasets ----------------------------------------------------------------

TFDS_NAMES = {"celeba": "celeb_a", "cifar10": "cifar10", "mnist": "mnist",
              "fashion_mnist": "fashion_mnist"}
"""kvae's dataset names and the tfds builders behind them."""

SYNTHETIC = ("manifold2d", "sphere")

DATASETS = (*TFDS_NAMES, "imagefolder:PATH", *SYNTHETIC)
"""Every dataset name the training command takes."""

IMAGE_SHAPES = {"celeba": (64, 64, 3), "cifar10": (32, 32, 3), "mnist": (28, 28, 1),
                "fashion_mnist": (28, 28, 1)}

VALIDATION_SPLITS = {"celeba": "validation"}
"""The split used for validation loss and pictures: CelebA's official
validation partition; the test split for the others, which have no
validation split (the originals train on the whole training split)."""

CELEBA_CROP = (slice(45, 173), slice(25, 153))
"""Rows 45-172 and columns 25-152 of the aligned 218x178 faces: the centred
128x128 crop of both originals (original-code.md A.6, B.5)."""

CELEBA_SIDE = 64

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

CELEBA_FILES = ("img_align_celeba.zip", "list_eval_partition.txt", "list_attr_celeba.txt",
                "list_landmarks_align_celeba.txt", "identity_CelebA.txt")


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
    resized = tf.image.resize(crop, (CELEBA_SIDE, CELEBA_SIDE), method="bilinear",
                              antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def _celeba_help(data_dir, error):
    import tensorflow_datasets as tfds

    root = Path(data_dir) if data_dir else Path(tfds.core.constants.DATA_DIR)
    manual = root / "downloads" / "manual"
    return (f"CelebA could not be downloaded ({type(error).__name__}; Google Drive quotas "
            f"are common). Place {', '.join(CELEBA_FILES)} from "
            f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html in {manual} and run again.")


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
            manual_dir=os.path.join(os.fspath(data_dir), "downloads", "manual"))
    try:
        dataset = tfds.load(builder_name, split=split, data_dir=data_dir,
                            download_and_prepare_kwargs={"download_config": download_config})
    except Exception as error:  # noqa: BLE001 - tfds raises many kinds; all end the same way
        if name == "celeba":
            raise DataError(_celeba_help(data_dir, error)) from error
        raise DataError(f"Could not load {builder_name!r} with tensorflow-datasets: "
                        f"{type(error).__name__}: {error}") from error
    images = dataset.map(lambda example: example["image"], num_parallel_calls=tf.data.AUTOTUNE)
    if name == "celeba":
        images = images.map(celeba_crop_resize, num_parallel_calls=tf.data.AUTOTUNE)
    batches = [batch for batch in images.batch(1024).prefetch(2).as_numpy_iterator()]
    if not batches:
        raise DataError(f"The {split!r} split of {builder_name!r} is empty.")
    return np.concatenate(batches)


def find_images(folder):
    """Sorted paths of the image files under `folder` (recursively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"imagefolder: {folder} is not a readable folder.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
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


# -- synthetic data -------------------------------------------------------------

MANIFOLD2D_REGIONS = ((-1.0, -1.0 / 3.0, 0.03), (-1.0 / 3.0, 1.0 / 3.0, 0.005),
                      (1.0 / 3.0, 1.0, 0.1))
"""(start, end, noise std) of the three regions of `manifold2d` along the
curve parameter t: moderate, small and large noise."""


def sample_manifold2d(rng, n):
    """n points of the 2-D problem of Berger & Sebag 2020, Sec. 4.1 (Fig. 3):
    a 1-D manifold in R^2 with three regions of moderate, small and large
    noise. The paper gives it only as a figure; our construction: t ~ U(-1, 1)
    on the curve (t, 0.6 sin(pi t)), plus isotropic Gaussian noise whose std
    is set by the region of t (MANIFOLD2D_REGIONS)."""
    t = rng.uniform(-1.0, 1.0, size=n)
    points = np.stack([t, 0.6 * np.sin(np.pi * t)], axis=1)
    noise_std = np.zeros(n)
    for start, end, std in MANIFOLD2D_REGIONS:
        noise_std[(t >= start) & (t <= end)] = std
    points += rng.normal(size=(n, 2)) * noise_std[:, None]
    return points.astype(np.float32)


def sample_sphere(rng, n, dim, radius):
    """n points uniform on the hypersphere S_{dim-1}(radius) in R^dim (the
    data of Berger & Sebag's Theorem 1): radius * g / |g|, g ~ N(0, I)."""
    directions = rng.normal(size=(n, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return (radius * directions).astype(np.float32)


# -- tf.data pipelines ----------------------------------------------------------


def as_float(array):
    """uint8 images to float32 in [0, 1]; other arrays as float32 (NumPy)."""
    array = np.asarray(array)
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else \
        array.astype(np.float32)


def _as_float(batch):
    import tensorflow as tf

    if batch.dtype == tf.uint8:
        return tf.cast(batch, tf.float32) / 255.0
    return tf.cast(batch, tf.float32)


class Dataset:
    """A training set and its validation set, served as tf.data pipelines of
    float32 batches in [0, 1] for images.

    Training batches follow the originals: each epoch a fresh permutation,
    floor(N / batch_size) batches with the remainder dropped. The arrays stay
    in memory (uint8 for images), which is the cache. Synthetic datasets
    (`sampler` given) draw fresh points for every batch instead; their
    `train` array is a fixed sample, used where a finite training set is
    needed (the stage-2 posteriors).
    """

    def __init__(self, name, train, validation, sampler=None):
        self.name = name
        self.train = train
        self.validation = validation
        self.sampler = sampler
        self.shape = tuple(train.shape[1:])

    @property
    def num_train(self):
        return len(self.train)

    def steps_per_epoch(self, batch_size):
        """floor(N / batch_size): one pass over the training set."""
        steps = self.num_train // batch_size
        if steps < 1:
            raise DataError(f"{self.name}: {self.num_train} training examples are fewer than "
                            f"one batch of {batch_size}; lower --batch-size.")
        return steps

    def train_batches(self, batch_size, seed):
        """An endless tf.data pipeline of shuffled training batches."""
        import tensorflow as tf

        if self.sampler is not None:
            return self._sampled_batches(batch_size, seed)
        dataset = tf.data.Dataset.from_tensor_slices(self.train)
        dataset = dataset.shuffle(len(self.train), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
        return dataset.map(_as_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE)

    def _sampled_batches(self, batch_size, seed):
        import tensorflow as tf

        def fresh_points():
            rng = np.random.default_rng(seed)
            while True:
                yield self.sampler(rng, batch_size)

        signature = tf.TensorSpec((batch_size, *self.shape), tf.float32)
        dataset = tf.data.Dataset.from_generator(fresh_points, output_signature=signature)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def validation_batches(self, batch_size):
        """The validation set in order, every example once."""
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(self.validation).batch(batch_size)
        return dataset.map(_as_float).prefetch(tf.data.AUTOTUNE)

    def examples(self, count, split="validation"):
        """The first `count` examples of a split as float32 NumPy."""
        return as_float((self.validation if split == "validation" else self.train)[:count])


class LatentDataset(Dataset):
    """Stage-2 training data (Dai & Wipf, original-code.md A.3): the stage-1
    posteriors (mu, sigma) of every training example, computed once; every
    batch draws a fresh z = mu + sigma * eps. Validation uses one fixed draw."""

    def __init__(self, name, mu, log_sigma, validation_mu, validation_log_sigma, seed=0):
        rng = np.random.default_rng([seed, 2])
        validation = validation_mu + np.exp(validation_log_sigma) * rng.normal(
            size=validation_mu.shape)
        # `train` holds the means: shapes and counts read them; batches add noise.
        super().__init__(name, mu.astype(np.float32), validation.astype(np.float32))
        self.sigma = np.exp(log_sigma).astype(np.float32)

    def train_batches(self, batch_size, seed):
        import tensorflow as tf

        def draw(mu, sigma):
            return mu + sigma * tf.random.normal(tf.shape(mu), seed=seed)

        dataset = tf.data.Dataset.from_tensor_slices((self.train, self.sigma))
        dataset = dataset.shuffle(len(self.train), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=True).repeat()
        return dataset.map(draw).prefetch(tf.data.AUTOTUNE)


# -- by name ----------------------------------------------------------------------


def check_name(name):
    """The dataset name, or a DataError listing the known ones."""
    if name.startswith("imagefolder:"):
        if not name[len("imagefolder:"):]:
            raise DataError("imagefolder needs a path: imagefolder:PATH.")
        return name
    if name not in TFDS_NAMES and name not in SYNTHETIC:
        raise DataError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
    return name


def data_shape(name, image_size=64, dim=8):
    """The shape of one example, known without loading anything."""
    check_name(name)
    if name.startswith("imagefolder:"):
        return (image_size, image_size, 3)
    if name == "manifold2d":
        return (2,)
    if name == "sphere":
        return (dim,)
    return IMAGE_SHAPES[name]


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


def load(name, data_dir=None, image_size=64, dim=8, radius=1.0, seed=0, synthetic_size=10000):
    """A `Dataset` by name (see DATASETS).

    Args:
        name: "celeba", "cifar10", "mnist", "fashion_mnist" (tfds; mnist and
            fashion_mnist from idx files when found, see `idx_folder`),
            "imagefolder:PATH", "manifold2d" or "sphere".
        data_dir: the tfds data folder, or a folder of idx files.
        image_size: side of imagefolder images.
        dim, radius: the sphere's dimension D and radius R.
        seed: seeds the imagefolder split and the synthetic samples.
        synthetic_size: points in the fixed training and validation samples
            of synthetic datasets.
    """
    check_name(name)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a readable folder.")
    if name.startswith("imagefolder:"):
        train, validation = load_image_folder(name[len("imagefolder:"):], image_size, seed=seed)
        return Dataset(name, train, validation)
    if name in SYNTHETIC:
        if name == "manifold2d":
            sampler = sample_manifold2d
        else:
            def sampler(rng, n):
                return sample_sphere(rng, n, dim, radius)
        train = sampler(np.random.default_rng([seed, 0]), synthetic_size)
        validation = sampler(np.random.default_rng([seed, 1]), synthetic_size)
        return Dataset(name, train, validation, sampler=sampler)
    folder = idx_folder(name, data_dir) if name in ("mnist", "fashion_mnist") else None
    if folder is not None:
        try:
            return Dataset(name, load_idx_images(folder, "train"), load_idx_images(folder, "test"))
        except (OSError, ValueError) as error:
            raise DataError(f"{name}: {error}") from error
    validation_split = VALIDATION_SPLITS.get(name, "test")
    return Dataset(name, load_tfds_images(name, "train", data_dir),
                   load_tfds_images(name, validation_split, data_dir))


SPLITS = {"celeba": ("train", "validation", "test"), "imagefolder": ("train", "validation")}
"""The splits `load_split` takes; the others have train and test (and
"validation" names the test split, as in training), synthetic data a fresh
seeded sample for each of train, validation and test."""


def load_split(name, split="test", data_dir=None, image_size=64, dim=8, radius=1.0, seed=0,
               count=10000):
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
        raise DataError(f"--data-dir {data_dir} is not a readable folder.")
    family = "imagefolder" if name.startswith("imagefolder:") else name
    known = SPLITS.get(family, ("train", "validation", "test"))
    if split not in known:
        raise DataError(f"{name} has no {split!r} split; expected one of {', '.join(known)}.")
    if family == "imagefolder":
        train, validation = load_image_folder(name[len("imagefolder:"):], image_size, seed=seed)
        return train if split == "train" else validation
    if name in SYNTHETIC:
        stream = {"train": 0, "validation": 1, "test": 3}[split]
        rng = np.random.default_rng([seed, stream])
        if name == "manifold2d":
            return sample_manifold2d(rng, count)
        return sample_sphere(rng, count, dim, radius)
    if split == "validation":
        split = VALIDATION_SPLITS.get(name, "test")
    folder = idx_folder(name, data_dir) if name in ("mnist", "fashion_mnist") else None
    if folder is not None:
        try:
            return load_idx_images(folder, split)
        except (OSError, ValueError) as error:
            raise DataError(f"{name}: {error}") from error
    return load_tfds_images(name, split, data_dir)
