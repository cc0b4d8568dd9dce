"""The second-stage MLP of Dai & Wipf 2019, for a VAE on stage-1 latents.

Encoder: z -> `second_depth` Dense(`second_dim`) + ReLU layers -> concatenate
[z, features] -> linear heads mu_u and log sigma_u. Decoder: u -> the same
stack -> concatenate [u, features] -> linear z_hat. No batch norm, no output
activation.

Reference: Dai & Wipf 2019, Section 4 and the code's stage-2 network.
"""

import keras
from keras import layers

from kvae.networks.layers import check_vector_shape, gaussian_heads, vector_output


def _stack(inputs, width, depth, name, dtype):
    h = inputs
    for i in range(depth):
        h = layers.Dense(width, activation="relu", name=f"{name}_dense{i}", dtype=dtype)(h)
    return layers.Concatenate(name=f"{name}_skip", dtype=dtype)([inputs, h])


def build_encoder(data_shape, latent_dim, dtype, second_dim, second_depth):
    """z -> [mu_u, log_sigma_u]."""
    check_vector_shape(data_shape, "stage2")
    z = keras.Input(shape=tuple(data_shape), name="z")
    h = _stack(z, second_dim, second_depth, "enc", dtype)
    return keras.Model(z, gaussian_heads(h, latent_dim), name="encoder")


def build_decoder(data_shape, latent_dim, dtype, pixel, second_dim, second_depth):
    """u -> z_hat (linear), or [z_hat, log_sigma] per dimension."""
    check_vector_shape(data_shape, "stage2")
    u = keras.Input(shape=(latent_dim,), name="u")
    h = _stack(u, second_dim, second_depth, "dec", dtype)
    outputs = vector_output(h, data_shape[0], pixel, dtype)
    return keras.Model(u, outputs, name="decoder")
