"""The ResNet encoder and decoder of Dai & Wipf 2019 (also Asperti & Trentin).

Encoder: a linear stem conv, then `num_scale` scale blocks of pre-activation
residual blocks at widths base_dim * 2^i, each but the last followed by a
linear stride-2 conv that doubles the width; global average pooling; one
dense residual block of width `fc_dim`; linear heads mu and log sigma.

Decoder: a linear dense layer to a 2x2 map whose width is the last of
base_dim * 2^k (k = 0..log2 H - 1, capped at 1024), then per side 4, 8, ...,
H a linear stride-2 transposed conv and a scale block; a final conv to the
image channels; sigmoid.

A residual block repeats `depth_per_block` times [BN -> ReLU -> conv] and adds
a full kernel_size x kernel_size conv of its input as the shortcut (always, even
at equal widths); no activation after the sum. Every conv is 'same', with
bias, Glorot-uniform init.

Reference: Dai & Wipf, "Diagnosing and Enhancing VAE Models", ICLR 2019,
https://arxiv.org/abs/1903.05789 (code: daib13/TwoStageVAE, class Resnet).
"""

import keras
from keras import layers

from kvae.networks.layers import batch_norm, gaussian_heads, image_output

MAX_DECODER_WIDTH = 1024


def check_image_shape(image_shape, num_scale):
    """ResNet images are square with a side that is a power of two, large
    enough for `num_scale - 1` halvings."""
    if len(image_shape) != 3:
        raise ValueError(
            f"The ResNet network takes images (H, W, C). Received: image_shape={tuple(image_shape)}"
        )
    height, width, _ = image_shape
    side_ok = height == width and height >= 2 and height & (height - 1) == 0
    if not side_ok:
        raise ValueError(
            "The ResNet network needs square images whose side is a power of "
            f"two (2, 4, 8, ..., 64, ...). Received: image_shape="
            f"{tuple(image_shape)}; use net='infogan' for 28x28 images."
        )
    if height < 2 ** (num_scale - 1):
        raise ValueError(
            f"num_scale={num_scale} halves the image {num_scale - 1} times; "
            f"the side {height} is too small (at least {2 ** (num_scale - 1)})."
        )


def _conv(filters, kernel_size, name, dtype, strides=1):
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        name=name,
        dtype=dtype,
    )


def residual_block(x, out_dim, depth, kernel_size, name, dtype):
    """Pre-activation residual block with a conv shortcut (see module doc)."""
    y = x
    for i in range(depth):
        y = batch_norm(f"{name}_bn{i}", dtype)(y)
        y = layers.ReLU(name=f"{name}_relu{i}", dtype=dtype)(y)
        y = _conv(out_dim, kernel_size, f"{name}_conv{i}", dtype)(y)
    shortcut = _conv(out_dim, kernel_size, f"{name}_shortcut", dtype)(x)
    return layers.Add(name=f"{name}_add", dtype=dtype)([y, shortcut])


def scale_block(x, out_dim, block_per_scale, depth_per_block, kernel_size, name, dtype):
    """`block_per_scale` residual blocks at a constant width."""
    for i in range(block_per_scale):
        x = residual_block(x, out_dim, depth_per_block, kernel_size, f"{name}_block{i}", dtype)
    return x


def dense_residual_block(x, out_dim, depth, name, dtype):
    """depth x [ReLU -> Dense(out_dim)] plus a linear Dense shortcut."""
    y = x
    for i in range(depth):
        y = layers.ReLU(name=f"{name}_relu{i}", dtype=dtype)(y)
        y = layers.Dense(out_dim, name=f"{name}_dense{i}", dtype=dtype)(y)
    shortcut = layers.Dense(out_dim, name=f"{name}_shortcut", dtype=dtype)(x)
    return layers.Add(name=f"{name}_add", dtype=dtype)([y, shortcut])


def decoder_widths(side, base_dim):
    """[(side, width), ...] from 2x2 up to side x side (Dai's side list)."""
    sides = []
    current = 2
    while current <= side:
        sides.append(current)
        current *= 2
    widths = [min(base_dim * 2**k, MAX_DECODER_WIDTH) for k in range(len(sides))]
    return list(zip(sides, reversed(widths)))


def build_encoder(
    image_shape,
    latent_dim,
    dtype,
    base_dim,
    num_scale,
    block_per_scale,
    depth_per_block,
    kernel_size,
    fc_dim,
):
    """x -> [mu, log_sigma]."""
    check_image_shape(image_shape, num_scale)
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = _conv(base_dim, kernel_size, "stem", dtype)(x)
    for i in range(num_scale):
        h = scale_block(
            h,
            base_dim * 2**i,
            block_per_scale,
            depth_per_block,
            kernel_size,
            f"scale{i}",
            dtype,
        )
        if i < num_scale - 1:
            h = _conv(base_dim * 2 ** (i + 1), kernel_size, f"down{i}", dtype, strides=2)(h)
    h = layers.GlobalAveragePooling2D(name="pool", dtype=dtype)(h)
    h = dense_residual_block(h, fc_dim, depth_per_block, "fc", dtype)
    return keras.Model(x, gaussian_heads(h, latent_dim), name="encoder")


def build_decoder(
    image_shape,
    latent_dim,
    dtype,
    pixel,
    base_dim,
    num_scale,
    block_per_scale,
    depth_per_block,
    kernel_size,
    fc_dim,
):
    """z -> x_mean (sigmoid), or [x_mean, x_log_sigma] for per-pixel sigma."""
    check_image_shape(image_shape, num_scale)
    side, _, channels = image_shape
    plan = decoder_widths(side, base_dim)
    z = keras.Input(shape=(latent_dim,), name="z")
    first_width = plan[0][1]
    h = layers.Dense(4 * first_width, name="project", dtype=dtype)(z)
    h = layers.Reshape((2, 2, first_width), name="reshape", dtype=dtype)(h)
    for i, (_, width) in enumerate(plan[1:]):
        h = layers.Conv2DTranspose(
            width,
            kernel_size,
            strides=2,
            padding="same",
            name=f"up{i}",
            dtype=dtype,
        )(h)
        h = scale_block(
            h,
            width,
            block_per_scale,
            depth_per_block,
            kernel_size,
            f"scale{i}",
            dtype,
        )
    outputs = image_output(
        h,
        channels,
        pixel,
        lambda filters: _conv(filters, kernel_size, "out", dtype),
    )
    return keras.Model(z, outputs, name="decoder")
