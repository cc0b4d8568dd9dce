"""The custom train step, one module per Keras backend.

The math lives on the model (`VAE.compute_terms`, on keras.ops); a backend
module only orders the step: forward pass, loss scaling, gradients, optimizer
step, the computed-gamma update, metrics. Chosen by `keras.backend.backend()`
at call time, as Keras picks its own trainer.
"""

import importlib

import keras

SUPPORTED = ("tensorflow", "jax")


def get():
    """The module holding train_step/test_step for the current backend."""
    name = keras.backend.backend()
    if name not in SUPPORTED:
        raise NotImplementedError(
            f"kvae trains on the {' and '.join(SUPPORTED)} backends; KERAS_BACKEND is {name!r}."
        )
    return importlib.import_module(f"kvae.backends.{name}")


def unpack(data):
    """(x, noise, weights) of a step's data: x alone, the first element of
    (x, ...), or a dict {"x", "noise" (optional fixed eps, (B, latent_dim)),
    "weight" (optional (B,) example weights, 0 for padding)}."""
    if isinstance(data, (tuple, list)):
        data = data[0]
    if isinstance(data, dict):
        return data["x"], data.get("noise"), data.get("weight")
    return data, None, None
