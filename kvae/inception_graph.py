"""The papers' FID network as a feature extractor: TensorFlow's Inception-v3
graph of 2015-12-05 (`kvae.inception` finds and establishes the archive),
fed under each paper's protocol (`PROTOCOLS`, original-code.md A.7 and B.6):

- `dai2019` (Dai & Wipf, fid_score.py): pixels 0..255 at `ExpandDims:0`,
  at the images' own size (the graph resizes to 299 and rescales itself);
  generated images (reconstructions included) are min-max stretched per
  image first; batches of 50, the remainder dropped.
- `asperti2020` (Asperti & Trentin, fid.py on TF-GAN's `run_inception`):
  pixels in [0, 1] mapped to [-1, 1], resized to 299x299 by TF1's
  `resize_bilinear` (no half-pixel centres, no antialiasing) and fed at
  `Mul:0`, past the graph's own resize and rescaling; batches of 64, the
  remainder dropped. TF-GAN ships that graph cut at `Mul:0` as
  `frozen_inception_v1_2015_12_05`; kvae feeds the same tensor of the
  official archive's graph.

The graph runs in TensorFlow 2 as a wrapped function (on the GPU when
TensorFlow sees one).
"""

import numpy as np

from kvae.inception import (
    GRAPH_MEMBER,
    InceptionUnavailable,
    establish,
    locate,
    read_graph_def,
)

FEATURES_TENSOR = "pool_3:0"
FEATURE_DIM = 2048
SIDE = 299
NETWORK = (
    "TensorFlow Inception-v3 graph of 2015-12-05 (inception-2015-12-05.tgz, "
    "classify_image_graph_def.pb), pool_3:0, 2048 features"
)


# -- the protocols: pure pixel functions ------------------------------------------------------


def to_rgb(images):
    """Grey images (N, H, W, 1) repeated into 3 channels; RGB unchanged."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"Expected images (N, H, W, 1 or 3). Received: shape={images.shape}")
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def to_unit_range(images):
    """Images as float32 in the data's [0, 1] scale: uint8 divided by 255,
    floats unchanged."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    return images.astype(np.float32)


def min_max_stretch(images):
    """Each image stretched to [0, 1] over all its pixels and channels
    (Dai & Wipf's `preprocess_fake_images` with norm=True). A constant image,
    which the original divides by zero, becomes all zeros."""
    images = np.asarray(images, np.float32)
    axes = tuple(range(1, images.ndim))
    low = images.min(axis=axes, keepdims=True)
    spread = images.max(axis=axes, keepdims=True) - low
    return np.where(spread > 0, (images - low) / np.where(spread > 0, spread, 1.0), 0.0).astype(
        np.float32
    )


def dai2019_pixels(images, generated):
    """The values Dai & Wipf feed at `ExpandDims:0`: RGB, 0..255, native
    size. Real uint8 images are fed as they are; generated images (floats in
    the data's [0, 1] scale) are min-max stretched per image, then x 255."""
    images = to_rgb(images)
    if generated:
        return min_max_stretch(to_unit_range(images)) * np.float32(255.0)
    if images.dtype == np.uint8:
        return images.astype(np.float32)
    return to_unit_range(images) * np.float32(255.0)


def asperti2020_pixels(images, generated):
    """The values Asperti & Trentin feed before the resize: RGB in [0, 1]
    (clipped; their code asserts the range) mapped to [-1, 1]. Real and
    generated images alike."""
    del generated
    return np.clip(to_unit_range(to_rgb(images)), 0.0, 1.0) * np.float32(2.0) - np.float32(1.0)


PROTOCOLS = {
    "dai2019": {
        "pixels": dai2019_pixels,
        "input_tensor": "ExpandDims:0",
        "resize_to_299": False,
        "batch_size": 50,
        "source": "Dai & Wipf 2019, fid_score.py (original-code.md A.7)",
        "preprocessing": "grey to RGB; generated images min-max stretched per image; values "
        "0..255 at ExpandDims:0, native size (the graph resizes to 299 and rescales)",
    },
    "asperti2020": {
        "pixels": asperti2020_pixels,
        "input_tensor": "Mul:0",
        "resize_to_299": True,
        "batch_size": 64,
        "source": "Asperti & Trentin 2020, fid.py on TF-GAN run_inception (original-code.md B.6)",
        "preprocessing": "grey to RGB; [0, 1] to [-1, 1]; TF1 resize_bilinear to 299x299 "
        "(align_corners=False, no half-pixel centres); fed at Mul:0",
    },
}
"""Each paper's way of feeding the graph; both drop the last incomplete batch."""


def images_used(count, protocol):
    """How many of `count` images a protocol feeds (whole batches only)."""
    batch_size = PROTOCOLS[protocol]["batch_size"]
    return (count // batch_size) * batch_size


# -- the network ----------------------------------------------------------------------------


class InceptionGraph:
    """pool_3 features (N, 2048) of the 2015-12-05 graph under one protocol.

    Args:
        archive: the archive's path, or None for the Keras cache.
        protocol: "dai2019" or "asperti2020".
        expected: a sha256 to require instead of the verification by
            function (default: $KVAE_INCEPTION_SHA256, else none).
        verbose: show a progress bar over the batches.

    Raises:
        InceptionUnavailable: missing, unreadable, or not established as the
            papers' network (`establish`).
    """

    def __init__(self, archive=None, protocol="dai2019", expected=None, verbose=True):
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"Unknown FID protocol {protocol!r}; expected one of {list(PROTOCOLS)}"
            )
        self.archive = locate(archive)
        self.provenance = establish(self.archive, expected)
        self.sha256 = self.provenance["network_sha256"]
        self.protocol_name = protocol
        self.settings = PROTOCOLS[protocol]
        self.verbose = verbose
        self._function = _wrapped_graph(
            read_graph_def(self.archive),
            self.settings["input_tensor"],
            self.settings["resize_to_299"],
        )

    def cache_key(self):
        """What the features depend on besides the images."""
        return {"network_sha256": self.sha256, "protocol": self.protocol_name}

    def protocol(self, count=None):
        """The words written beside every FID in metrics.json."""
        record = {
            "network": NETWORK,
            **self.provenance,
            "fid_protocol": self.protocol_name,
            "source": self.settings["source"],
            "preprocessing": self.settings["preprocessing"],
            "batch_size": self.settings["batch_size"],
        }
        if count is not None:
            record["images_used"] = images_used(count, self.protocol_name)
        return record

    def __call__(self, images, generated=False):
        import keras
        import tensorflow as tf

        batch_size = self.settings["batch_size"]
        batches = len(images) // batch_size
        if batches == 0:
            raise ValueError(
                f"The {self.protocol_name} FID protocol feeds whole batches of {batch_size}; "
                f"{len(images)} images are fewer."
            )
        bar = keras.utils.Progbar(batches, verbose=1 if self.verbose else 0, unit_name="batch")
        outputs = []
        for index in range(batches):
            batch = images[index * batch_size : (index + 1) * batch_size]
            pixels = self.settings["pixels"](batch, generated)
            features = self._function(tf.constant(pixels, tf.float32))
            outputs.append(np.reshape(features.numpy(), (batch_size, -1)))
            bar.update(index + 1)
        return np.concatenate(outputs).astype(np.float64)


def _wrapped_graph(serialized, input_tensor, resize_to_299):
    """A TF2 function of a float32 batch (N, H, W, 3) that runs the imported
    graph from `input_tensor` to `pool_3:0` (after TF1's resize_bilinear to
    299x299 when `resize_to_299`)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(serialized)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InceptionUnavailable(f"{GRAPH_MEMBER} is not a GraphDef: {error}") from error

    def imported(images):
        if resize_to_299:
            images = tf.compat.v1.image.resize_bilinear(
                images, [SIDE, SIDE], align_corners=False, half_pixel_centers=False
            )
        (features,) = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={input_tensor: images},
            return_elements=[FEATURES_TENSOR],
            name="inception",
        )
        return features

    try:
        return tf.compat.v1.wrap_function(
            imported, [tf.TensorSpec([None, None, None, 3], tf.float32)]
        )
    except (ValueError, KeyError, tf.errors.OpError) as error:
        raise InceptionUnavailable(
            f"{GRAPH_MEMBER} has no {input_tensor} -> {FEATURES_TENSOR} path: {error}"
        ) from error
