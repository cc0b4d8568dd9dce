"""Feature extractors for Frechet distances, and the cache of the real
images' statistics.

- The papers' FID network, TensorFlow's Inception graph of 2015-12-05, lives
  in `kvae.inception` (fetched by `python -m kvae.features
  download-inception`); only it is ever reported as "fid".
- The 128-d penultimate features of a small classifier trained on
  Fashion-MNIST labels, shipped with kvae (`kvae/assets/fmnist_classifier.keras`),
  for FD-fmnist: a sample-quality figure for 28x28 models that needs no
  download. It is always reported as FD-fmnist, never as FID. Retrain it with
  `python -m kvae.features train-fmnist-classifier` (the command, its
  seed and its test accuracy are in docs/evaluation.md).

Keras's own `keras.applications.InceptionV3` is not offered: its ImageNet
weights are another network than the 2015 graph, so its Frechet distances
cannot be compared with any paper's FID (docs/evaluation.md).
"""

if __name__ == "__main__":  # the command: start TensorFlow quietly before the imports load it
    from kvae import quiet

    quiet.start_backend()

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from kvae.files import digest as file_digest

FMNIST_CLASSIFIER = Path(__file__).with_name("assets") / "fmnist_classifier.keras"
FMNIST_FEATURES_LAYER = "features"
FMNIST_SHAPE = (28, 28, 1)


# -- the real images' statistics, cached --------------------------------------------------


def default_statistics_cache():
    """Where real-image statistics are kept: the Keras cache's kvae/fid_statistics."""
    from kvae import inception

    return inception.keras_cache() / "kvae" / "fid_statistics"


def statistics_key(extractor, images, **context):
    """What real-image statistics depend on: the extractor (network digest
    and protocol), the words in `context` (dataset, split, ...), the images'
    shape, dtype and the sha256 of their bytes."""
    images = np.ascontiguousarray(images)
    return {
        **extractor.cache_key(),
        **context,
        "shape": list(images.shape),
        "dtype": str(images.dtype),
        "images_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
    }


def real_statistics(extractor, images, context, cache_dir=None):
    """Mean and covariance of `extractor`'s features of the real images,
    read from `cache_dir` when an earlier evaluation stored them under the
    same `statistics_key`, else computed and stored there (None: no cache).

    Returns:
        ((mean, covariance), whether they came from the cache).
    """
    from kvae import metrics

    if cache_dir is None:
        return metrics.gaussian_statistics(extractor(images, generated=False)), False
    key = statistics_key(extractor, images, **context)
    encoded = json.dumps(key, sort_keys=True)
    path = Path(cache_dir) / (hashlib.sha256(encoded.encode()).hexdigest()[:32] + ".npz")
    if path.is_file():
        try:
            with np.load(path) as stored:
                if str(stored["key"]) == encoded:
                    return (stored["mean"], stored["covariance"]), True
        except (OSError, ValueError, KeyError):
            pass  # an unreadable entry is recomputed and replaced
    mean, covariance = metrics.gaussian_statistics(extractor(images, generated=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(partial, key=np.array(encoded), mean=mean, covariance=covariance)
    os.replace(partial, path)
    return (mean, covariance), False


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

    def cache_key(self):
        return {"network_md5": self.md5, "protocol": "fd_fmnist"}

    def protocol(self, count=None):
        record = {
            "network": "kvae's Fashion-MNIST classifier (kvae/assets/fmnist_classifier.keras), "
            "128-d 'features' layer; see docs/evaluation.md",
            "weights_md5": self.md5,
            "preprocessing": "clip to [0, 1], native 28x28x1",
            "note": "FD-fmnist, not FID: the Frechet distance on these features.",
        }
        if count is not None:
            record["images_used"] = count
        return record

    def __call__(self, images, generated=False):
        """Features (N, 128); real and generated images are treated alike."""
        from keras import ops

        del generated
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
            "Debian's dataset-fashion-mnist or give data_dir.",
            argument="data_dir",
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


def download_inception():
    """`download-inception`: fetch the archive and establish it as the
    papers' network (`kvae.inception.establish`); print how, and exit 0, or 2
    with one line when it is not."""
    from kvae import inception

    try:
        path, provenance = inception.download()
    except inception.InceptionUnavailable as error:
        print(f"kvae.features: error: {error}", file=sys.stderr)
        return 2
    print(f"{path}: sha256 {provenance['network_sha256']}")
    print(f"established by {provenance['verified_by']}")
    if "top5" in provenance:
        print(
            "cropped_panda.jpg: "
            + ", ".join(f"{name} {score:.5f}" for name, score in provenance["top5"])
        )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kvae.features")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train-fmnist-classifier", help="retrain the FD-fmnist classifier")
    train.add_argument("--out", type=Path, default=FMNIST_CLASSIFIER)
    train.add_argument("--data-dir", type=Path)
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--seed", type=int, default=0)
    commands.add_parser(
        "download-inception",
        help="fetch the papers' FID network (inception-2015-12-05.tgz) into the Keras cache",
    )
    args = parser.parse_args(argv)
    if args.command == "download-inception":
        return download_inception()
    accuracy = train_fmnist_classifier(args.out, args.data_dir, args.epochs, args.seed)
    md5 = file_digest(args.out, "md5")
    print(f"test accuracy {accuracy:.4f}; saved {args.out} (md5 {md5})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
