"""The InfoGAN-like network of Dai & Wipf 2019 (their code's default).

Encoder (every layer spectrally normalised, one power iteration):
conv 64 4x4 stride 2 -> leaky ReLU 0.2 -> conv 128 4x4 stride 2 -> BN ->
leaky ReLU -> flatten -> dense fc_dim -> BN -> leaky ReLU -> dense 2K, split
into mu and sigma = softplus(.) + 1e-6 (log sigma = log of that).

Decoder: dense fc_dim -> BN -> ReLU -> dense 128 (H/4)^2 -> BN -> ReLU ->
4x4 stride-2 transposed conv 64 -> BN -> ReLU -> 4x4 stride-2 transposed conv
C -> sigmoid.

Initialisers as the original: truncated normal(0, 0.02) for convolutions,
normal(0, 0.02) for dense and transposed-convolution kernels, zero biases.
Takes images whose side is divisible by 4 (28, 32, 64).

fc_dim is 1024 in the original. It is an option because the two dense layers
next to the 128 (H/4)^2 features hold 95 % of the weights (13.3 M parameters
at 28x28 with 64 latents); the zoo's Fashion-MNIST models use 256 to fit its
size budget.

Reference: Dai & Wipf 2019, https://arxiv.org/abs/1903.05789, and Chen et
al. 2016 (InfoGAN) for the layout.
"""

import keras
from keras import layers, ops

from kvae.networks.layers import (
    SpectralNormConv2D,
    SpectralNormDense,
    batch_norm,
    image_output,
)

SIGMA_OFFSET = 1e-6


def _check_image_shape(image_shape):
    if len(image_shape) != 3 or image_shape[0] % 4 or image_shape[1] % 4:
        raise ValueError(
            "The infogan network takes images (H, W, C) with H and W "
            f"divisible by 4. Received: image_shape={tuple(image_shape)}"
        )


def build_encoder(image_shape, latent_dim, dtype, fc_dim):
    """x -> [mu, log_sigma]."""
    _check_image_shape(image_shape)
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = SpectralNormConv2D(64, name="conv0", dtype=dtype)(x)
    h = layers.LeakyReLU(0.2, name="lrelu0", dtype=dtype)(h)
    h = SpectralNormConv2D(128, name="conv1", dtype=dtype)(h)
    h = batch_norm("bn1", dtype)(h)
    h = layers.LeakyReLU(0.2, name="lrelu1", dtype=dtype)(h)
    h = layers.Flatten(name="flatten", dtype=dtype)(h)
    h = SpectralNormDense(fc_dim, name="dense2", dtype=dtype)(h)
    h = batch_norm("bn2", dtype)(h)
    h = layers.LeakyReLU(0.2, name="lrelu2", dtype=dtype)(h)
    raw = SpectralNormDense(2 * latent_dim, name="heads", dtype="float32")(h)
    mu, sigma_logits = ops.split(raw, 2, axis=-1)
    mu = layers.Activation("linear", name="mu", dtype="float32")(mu)
    sigma = layers.Activation("softplus", name="sigma", dtype="float32")(sigma_logits)
    log_sigma = layers.Activation(
        lambda s: ops.log(s + SIGMA_OFFSET), name="log_sigma", dtype="float32"
    )(sigma)
    return keras.Model(x, [mu, log_sigma], name="encoder")


def build_decoder(image_shape, latent_dim, dtype, pixel, fc_dim):
    """z -> x_mean (sigmoid), or [x_mean, x_log_sigma] for per-pixel sigma."""
    _check_image_shape(image_shape)
    height, width, channels = image_shape
    normal = keras.initializers.RandomNormal(stddev=0.02)
    z = keras.Input(shape=(latent_dim,), name="z")
    h = layers.Dense(fc_dim, kernel_initializer=normal, name="dense0", dtype=dtype)(z)
    h = batch_norm("bn0", dtype)(h)
    h = layers.ReLU(name="relu0", dtype=dtype)(h)
    h = layers.Dense(
        128 * (height // 4) * (width // 4),
        kernel_initializer=normal,
        name="dense1",
        dtype=dtype,
    )(h)
    h = batch_norm("bn1", dtype)(h)
    h = layers.ReLU(name="relu1", dtype=dtype)(h)
    h = layers.Reshape((height // 4, width // 4, 128), name="reshape", dtype=dtype)(h)
    h = layers.Conv2DTranspose(
        64,
        4,
        strides=2,
        padding="same",
        kernel_initializer=normal,
        name="deconv2",
        dtype=dtype,
    )(h)
    h = batch_norm("bn2", dtype)(h)
    h = layers.ReLU(name="relu2", dtype=dtype)(h)
    outputs = image_output(
        h,
        channels,
        pixel,
        lambda filters: layers.Conv2DTranspose(
            filters,
            4,
            strides=2,
            padding="same",
            kernel_initializer=normal,
            name="deconv3",
            dtype=dtype,
        ),
    )
    return keras.Model(z, outputs, name="decoder")
