"""Loading kvae checkpoints (the native `.keras` format)."""

import os

import keras


def load(path, compile=True, safe_mode=True):
    """Load a `.keras` file written by kvae.

    Equivalent to `import kvae; keras.saving.load_model(path, ...)`: the
    import registers kvae's classes. With `compile=True` the optimizer state
    (iterations, Adam moments, loss scale) comes back so training resumes;
    use `compile=False` for inference.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No kvae checkpoint at {path!r}.")
    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
