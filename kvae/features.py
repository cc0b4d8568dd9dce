"""Feature extractors for Frechet distances.

- Inception-v3 pool features (2048-d) for the FID. The ImageNet weights come
  from the Keras cache or a path the user gives; kvae never downloads them
  during an evaluation and never computes an "FID" without them
  (`InceptionUnavailable` says how to provide them).
- The 128-d penultimate features of a small classifier trained on
  Fashion-MNIST labels, shipped with kvae (`kvae/assets/fmnist_classifier.keras`),
  for FD-fmnist: a sample-quality figure for 28x28 models that needs no
  download. It is always reported as FD-fmnist, never as FID. Retrain it with
  `python -m kvae.features train-fmnist-classifier` (the command, its
  seed and its test accuracy are in docs/evaluation.md).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from kvae.cli import file_digest

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
"""The Keras file of Inception-v3's ImageNet weights without the top."""

INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
"""Its MD5, as published in keras.applications.inception_v3."""

INCEPTION_SIDE = 299

FMNIST_CLASSIFIER = Path(__file__).with_name("assets") / "fmnist_classifier.keras"
FMNIST_FEATURES_LAYER = "features"
FMNIST_SHAPE = (28, 28, 1)


class InceptionUnavailable(Exception):
    """The Inception-v3 weights are not on this machine."""


def keras_cache():
    """Keras's cache folder: $KERAS_HOME, else ~/.keras (as Keras)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def inception_weights(path=None):
    """The path of the Inception-v3 weights: `path` if given, else the file
    in Keras's cache.

    Raises:
        InceptionUnavailable: with the commands that provide the file.
    """
    cached = keras_cache() / "models" / INCEPTION_FILE
    candidate = Path(path) if path is not None else cached
    if candidate.is_file():
        return candidate
    where = (
        f"--inception-weights {candidate} does not exist"
        if path is not None
        else f"no Inception-v3 weights in the Keras cache ({cached})"
    )
    raise InceptionUnavailable(
        f"FID needs the ImageNet Inception-v3 weights: {where}. On a machine with internet, "
        'run `python -c "import keras; keras.applications.InceptionV3(include_top=False, '
        "weights='imagenet')\"` once (it caches "
        f"{INCEPTION_FILE} under ~/.keras/models), or download it from "
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        f"{INCEPTION_FILE} and pass --inception-weights PATH. No FID is reported without them."
    )


def to_rgb(images):
    """Clip to [0, 1]; grey images are repeated into 3 channels."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"Expected images (N, H, W, 1 or 3). Received: shape={images.shape}")
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


class InceptionFeatures:
    """Inception-v3 global-average-pool features (2048-d) of images in [0, 1].

    Preprocessing (written into every FID's protocol): clip to [0, 1], grey
    to 3 channels, bilinear resize to 299x299 without antialiasing (as the
    BalancingVAE evaluation, tf.image.resize_bilinear), scale to [-1, 1]
    (Inception's "tf" preprocessing).
    """

    def __init__(self, weights=None, batch_size=50):
        import keras

        self.weights = inception_weights(weights)
        self.md5 = file_digest(self.weights, "md5")
        self.batch_size = batch_size
        self.network = keras.applications.InceptionV3(
            include_top=False,
            weights=str(self.weights),
            pooling="avg",
            input_shape=(INCEPTION_SIDE, INCEPTION_SIDE, 3),
        )

    def protocol(self):
        return {
            "network": "Keras applications InceptionV3, include_top=False, pooling='avg' (2048-d)",
            "weights": str(self.weights),
            "weights_md5": self.md5,
            "weights_are_keras_imagenet": self.md5 == INCEPTION_MD5,
            "preprocessing": "clip to [0, 1], grey to RGB, bilinear resize to 299x299 (no "
            "antialias), x * 2 - 1",
            "note": "Keras's ImageNet weights are not the 2015 TF graph of the papers' FID "
            "code; numbers are comparable with each other, not with the papers'.",
        }

    def __call__(self, images):
        from keras import ops

        outputs = []
        for start in range(0, len(images), self.batch_size):
            batch = to_rgb(images[start : start + self.batch_size])
            batch = ops.image.resize(
                batch, (INCEPTION_SIDE, INCEPTION_SIDE), interpolation="bilinear", antialias=False
            )
            outputs.append(ops.convert_to_numpy(self.network(batch * 2.0 - 1.0, training=False)))
        return np.concatenate(outputs).astype(np.float64)


# -- the Fashion-MNIST classifier ---------------------------------------------------------


def build_fmnist_classifier():
    """A small convolutional classifier: two conv + max-pool blocks, a
    128-unit ReLU layer named "features" (the FD-fmnist features), dropout
    and 10 logits."""
    import keras
    from keras import layers

    inputs = keras.Input(FMNIST_SHAPE, name="image")
    hidden = layers.Conv2D(32, 3, activation="relu")(inputs)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Conv2D(64, 3, activation="relu")(hidden)
    hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    features = layers.Dense(128, activation="relu", name=FMNIST_FEATURES_LAYER)(hidden)
    logits = layers.Dense(10, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits, name="fmnist_classifier")


class FashionMnistFeatures:
    """The 128-d "features" layer of the shipped Fashion-MNIST classifier,
    for images (N, 28, 28, 1) in [0, 1] (clipped)."""

    def __init__(self, path=FMNIST_CLASSIFIER, batch_size=500):
        import keras

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"The Fashion-MNIST classifier is missing: {self.path}. "
                "Retrain it with python -m kvae.features "
                "train-fmnist-classifier."
            )
        classifier = keras.saving.load_model(self.path, compile=False)
        self.network = keras.Model(
            classifier.input, classifier.get_layer(FMNIST_FEATURES_LAYER).output
        )
        self.md5 = file_digest(self.path, "md5")
        self.batch_size = batch_size

    def protocol(self):
        return {
            "network": "kvae's Fashion-MNIST classifier (kvae/assets/fmnist_classifier.keras), "
            "128-d 'features' layer; see docs/evaluation.md",
            "weights_md5": self.md5,
            "preprocessing": "clip to [0, 1], native 28x28x1",
            "note": "FD-fmnist, not FID: the Frechet distance on these features.",
        }

    def __call__(self, images):
        from keras import ops

        images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
        if images.shape[1:] != FMNIST_SHAPE:
            raise ValueError(f"FD-fmnist takes 28x28x1 images. Received: shape={images.shape}")
        outputs = [
            ops.convert_to_numpy(
                self.network(images[start : start + self.batch_size], training=False)
            )
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(outputs).astype(np.float64)


def train_fmnist_classifier(out, data_dir=None, epochs=8, seed=0):
    """Train the FD-fmnist classifier on the Fashion-MNIST training split
    (Adam 1e-3, batch 128, cross-entropy) and save it to `out`.

    Returns:
        float, the accuracy on the 10,000 test images.
    """
    import keras

    from kvae import data

    folder = data.idx_folder("fashion_mnist", data_dir)
    if folder is None:
        raise data.DataError(
            "No Fashion-MNIST idx files (with labels) found; install "
            "Debian's dataset-fashion-mnist or pass --data-dir."
        )
    keras.utils.set_random_seed(seed)
    train_x = data.load_idx_images(folder, "train").astype(np.float32) / 255.0
    train_y = data.load_idx_labels(folder, "train")
    test_x = data.load_idx_images(folder, "test").astype(np.float32) / 255.0
    test_y = data.load_idx_labels(folder, "test")
    classifier = build_fmnist_classifier()
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(train_x, train_y, batch_size=128, epochs=epochs, shuffle=True, verbose=2)
    accuracy = float(classifier.evaluate(test_x, test_y, batch_size=1000, verbose=0)[1])
    classifier.compile()  # the shipped file holds no optimizer state
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    classifier.save(out)
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kvae.features")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train-fmnist-classifier", help="retrain the FD-fmnist classifier")
    train.add_argument("--out", type=Path, default=FMNIST_CLASSIFIER)
    train.add_argument("--data-dir", type=Path)
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    accuracy = train_fmnist_classifier(args.out, args.data_dir, args.epochs, args.seed)
    md5 = file_digest(args.out, "md5")
    print(f"test accuracy {accuracy:.4f}; saved {args.out} (md5 {md5})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
