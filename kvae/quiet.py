"""A quiet start for kvae's commands and service: TensorFlow prints several
lines of C++ logging when it starts (and, on a machine without a GPU, an
error from its CUDA probe that reads like a failure), before its own log
level applies. The commands start the backend with those lines held back
and TF_CPP_MIN_LOG_LEVEL at 3 unless you set it; set KVAE_VERBOSE=1 to see
everything. Library
code never calls this: `import kvae` changes nothing in your process."""

import contextlib
import os
import sys

VERBOSE_ENV = "KVAE_VERBOSE"


def verbose():
    """Whether the user asked to see the backend's start-up lines."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def silenced_stderr():
    """File descriptor 2 goes to /dev/null within the block (C++ libraries
    write there directly, past sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def start_backend():
    """Import Keras and its backend and let TensorFlow probe for GPUs, with
    the start-up lines held back unless `verbose()`."""
    if verbose():
        import keras  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with silenced_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
