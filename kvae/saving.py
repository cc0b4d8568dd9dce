"""kvae's `.keras` files: reading one (`load_keras`) and converting a model
to float32. `kvae.load` is the public entry point; the checkpoints a run
writes while it trains are `kvae.training.checkpoints`'s."""

import os

import keras

from kvae import models  # noqa: F401 (registers kvae's classes for load_model)


def load_keras(path, compile=True, safe_mode=True):
    """A `.keras` file written by kvae (a `VAE`): `keras.saving.load_model`
    with kvae's classes registered (this module imports them). With
    `compile=True` the optimizer state (iterations, Adam moments, loss scale)
    comes back so training resumes; use `compile=False` for inference.
    `kvae.load` is the public entry point (files, presets, zoo names, Hub
    handles)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No kvae checkpoint at {path!r}.")
    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)


def to_float32(model):
    """The same VAE computing in float32 (for CPU inference): a model built
    with precision "float32" from the config, holding the same weights
    (variables are float32 under every policy). A float32 model is
    returned as it is."""
    if model.precision == "float32":
        return model
    config = {**model.get_config(), "precision": "float32"}
    converted = type(model).from_config(config)
    converted.set_weights(model.get_weights())
    return converted
