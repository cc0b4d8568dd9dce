"""Loading kvae checkpoints (the native `.keras` format)."""

import os

import keras


def load(path, compile=True, safe_mode=True):
    """Load a `.keras` file written by kvae (a `VAE`), or a preset folder
    (a `TwoStageVAE`, its files' sha256 checked).

    For a file this is `import kvae; keras.saving.load_model(path, ...)`:
    the import registers kvae's classes. With `compile=True` the optimizer
    state (iterations, Adam moments, loss scale) comes back so training
    resumes; use `compile=False` for inference.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        from kvae.two_stage import TwoStageVAE

        return TwoStageVAE.load(path, compile=compile, safe_mode=safe_mode)
    if not os.path.exists(path):
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
