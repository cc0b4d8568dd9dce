"""A residual MLP for low-dimensional data (the 2-D manifold experiment).

Berger & Sebag 2020, Section 4.1, use "a ResNet with 4 residual blocks of 200
neurons" for both encoder and decoder and give no further detail. Our
reading: a linear Dense(width) input projection, `num_blocks` residual blocks
h <- h + Dense(ReLU(Dense(ReLU(h)))) at that width, a ReLU, then linear heads
(mu and log sigma for the encoder; the mean, and a log sigma per dimension for
`pixel`, for the decoder).
"""

import keras
from keras import layers

from kvae.networks.layers import check_vector_shape, gaussian_heads, vector_output


def residual_trunk(inputs, width, num_blocks, name, dtype):
    """Projection, residual blocks and a final ReLU (see module doc)."""
    h = layers.Dense(width, name=f"{name}_in", dtype=dtype)(inputs)
    for i in range(num_blocks):
        y = layers.ReLU(dtype=dtype, name=f"{name}_block{i}_relu0")(h)
        y = layers.Dense(width, name=f"{name}_block{i}_dense0", dtype=dtype)(y)
        y = layers.ReLU(dtype=dtype, name=f"{name}_block{i}_relu1")(y)
        y = layers.Dense(width, name=f"{name}_block{i}_dense1", dtype=dtype)(y)
        h = layers.Add(name=f"{name}_block{i}_add", dtype=dtype)([h, y])
    return layers.ReLU(dtype=dtype, name=f"{name}_out_relu")(h)


def build_encoder(data_shape, latent_dim, dtype, width, num_blocks):
    check_vector_shape(data_shape, "mlp")
    x = keras.Input(shape=tuple(data_shape), name="x")
    h = residual_trunk(x, width, num_blocks, "enc", dtype)
    return keras.Model(x, gaussian_heads(h, latent_dim), name="encoder")


def build_decoder(data_shape, latent_dim, dtype, pixel, width, num_blocks):
    check_vector_shape(data_shape, "mlp")
    z = keras.Input(shape=(latent_dim,), name="z")
    h = residual_trunk(z, width, num_blocks, "dec", dtype)
    return keras.Model(z, vector_output(h, data_shape[0], pixel, dtype), name="decoder")
