"""The two MNIST networks of Asperti's variable-collapse paper (2019, seed 004).

- `collapse_dense` (Table 1): dense layers 784-256-64-32 with ReLU, then the
  mu and log sigma heads of the latents (16 in the paper); the decoder mirrors
  it, 32-64-256-784, sigmoid output.
- `collapse_conv` (Fig. 4, encoder only in the paper): conv 3x3/2 (16) -> BN
  -> ReLU -> conv 3x3 (32) -> conv 3x3/2 (32) -> BN -> ReLU -> conv 3x3/2
  (32) -> conv 3x3 (32) -> BN -> ReLU -> conv 2x2/2 (32) -> conv 2x2 (32) ->
  BN -> ReLU -> conv 2x2/2 (32) -> two 1x1 convs for mu and log sigma. The
  figure labels the last three convolutions 3x3 but gives 4,128 parameters
  each, which is a 2x2 kernel: we follow the parameter counts (46,208
  trainable parameters for 16 latents, as the figure). The decoder is "symmetric,
  upsampling via transposed convolutions"; our reading mirrors the encoder
  block by block (1x1 -> 2x2 -> 4x4 -> 8x8 cropped to 7x7 -> 14x14 -> 28x28).

Both heads output log sigma (the paper's Keras code has log variance: the
same model, another parametrisation). The figure is a Keras model summary,
so layers keep Keras's defaults: its initialisers, and batch norm with
Keras's momentum 0.99 and epsilon 1e-3 (`KERAS_BN`; debiased, as all of
kvae's batch norm), not the 0.999 / 1e-5 of Dai & Wipf's TensorFlow code.
With 0.999 and a learning rate of 1e-3 the moving statistics lag the
weights: after 20 epochs on Fashion-MNIST the convolutional VAE's validation
MSE was 0.045 against 0.013 in training.

Reference: A. Asperti, "Variational Autoencoders and the Variable Collapse
Phenomenon", Sensors & Transducers 2019 (arXiv:1812.09228 extended).
"""

import keras
from keras import layers

from kvae.networks.layers import batch_norm, gaussian_heads, image_output

KERAS_BN = {"momentum": 0.99, "epsilon": 1e-3}
"""Keras's BatchNormalization defaults, which the paper's Keras code had."""

DENSE_WIDTHS = (256, 64, 32)
CONV_SHAPE = (28, 28, 1)


def _check_shape(image_shape, net):
    if tuple(image_shape[:2]) != CONV_SHAPE[:2] or len(image_shape) != 3:
        raise ValueError(
            f"The {net} network takes 28x28 images (28, 28, C). "
            f"Received: image_shape={tuple(image_shape)}"
        )


def _dense_stack(h, widths, prefix, dtype):
    for index, width in enumerate(widths):
        h = layers.Dense(width, activation="relu", name=f"{prefix}{index}", dtype=dtype)(h)
    return h


class _DenseImageHead:
    """Dense to H*W*filters units, reshaped to (H, W, filters)."""

    def __init__(self, image_shape, dtype):
        self.image_shape, self.dtype = tuple(image_shape), dtype

    def __call__(self, filters):
        height, width, _ = self.image_shape

        def head(features):
            raw = layers.Dense(height * width * filters, name="dense_out", dtype=self.dtype)(
                features
            )
            return layers.Reshape((height, width, filters), name="reshape_out", dtype=self.dtype)(
                raw
            )

        return head


# -- collapse_dense ------------------------------------------------------------------------


def build_dense_encoder(image_shape, latent_dim, dtype):
    _check_shape(image_shape, "collapse_dense")
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = layers.Flatten(name="flatten", dtype=dtype)(x)
    h = _dense_stack(h, DENSE_WIDTHS, "dense", dtype)
    return keras.Model(x, gaussian_heads(h, latent_dim), name="encoder")


def build_dense_decoder(image_shape, latent_dim, dtype, pixel):
    _check_shape(image_shape, "collapse_dense")
    z = keras.Input(shape=(latent_dim,), name="z")
    h = _dense_stack(z, DENSE_WIDTHS[::-1], "dense", dtype)
    outputs = image_output(h, image_shape[-1], pixel, _DenseImageHead(image_shape, dtype))
    return keras.Model(z, outputs, name="decoder")


# -- collapse_conv ----------------------------------------------------------------------------

ENCODER_CONVS = (  # (filters, kernel, stride), then BN + ReLU after each group
    ((16, 3, 2),),
    ((32, 3, 1), (32, 3, 2)),
    ((32, 3, 2), (32, 3, 1)),
    ((32, 2, 2), (32, 2, 1)),
)
LAST_CONV = (32, 2, 2)


def conv_group(h, group, convs, layer_class, prefix, dtype):
    """One group of (transposed) 'same' convolutions, then BN and ReLU."""
    for index, (filters, kernel, stride) in enumerate(convs):
        h = layer_class(
            filters,
            kernel,
            strides=stride,
            padding="same",
            name=f"{prefix}{group}_{index}",
            dtype=dtype,
        )(h)
    h = batch_norm(f"bn{group}", dtype, **KERAS_BN)(h)
    return layers.ReLU(name=f"relu{group}", dtype=dtype)(h)


def build_conv_encoder(image_shape, latent_dim, dtype):
    _check_shape(image_shape, "collapse_conv")
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for group, convs in enumerate(ENCODER_CONVS):
        h = conv_group(h, group, convs, layers.Conv2D, "conv", dtype)
    filters, kernel, stride = LAST_CONV
    h = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", name="conv_last", dtype=dtype
    )(h)
    mu = layers.Conv2D(latent_dim, 1, name="mu_conv", dtype="float32")(h)
    log_sigma = layers.Conv2D(latent_dim, 1, name="log_sigma_conv", dtype="float32")(h)
    mu = layers.Flatten(name="mu", dtype="float32")(mu)
    log_sigma = layers.Flatten(name="log_sigma", dtype="float32")(log_sigma)
    return keras.Model(x, [mu, log_sigma], name="encoder")


DECODER_CONVS = (  # transposed (filters, kernel, stride); BN + ReLU after each group
    ((32, 2, 2), (32, 2, 1)),  # 1 -> 2
    ((32, 2, 2), (32, 3, 1)),  # 2 -> 4
    ((32, 3, 2), (32, 3, 1)),  # 4 -> 8, cropped to 7 before the next group
    ((16, 3, 2),),  # 7 -> 14
)


def build_conv_decoder(image_shape, latent_dim, dtype, pixel):
    _check_shape(image_shape, "collapse_conv")
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Reshape((1, 1, latent_dim), name="reshape", dtype=dtype)(z)
    h = layers.Conv2D(32, 1, name="conv_first", dtype=dtype)(h)
    for group, convs in enumerate(DECODER_CONVS):
        h = conv_group(h, group, convs, layers.Conv2DTranspose, "deconv", dtype)
        if group == 2:
            h = layers.Cropping2D(((0, 1), (0, 1)), name="crop", dtype=dtype)(h)

    def last_layer(filters):  # 14 -> 28
        return layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", name="deconv_out", dtype=dtype
        )

    return keras.Model(z, image_output(h, image_shape[-1], pixel, last_layer), name="decoder")
