"""The device Keras computes on: the one place kvae asks the backend about
it (`accelerator`, `device_name`; `models.auto_precision` and
`training.steps_per_execution` decide from it)."""

import os
import platform


def accelerator():
    """The first accelerator Keras computes on, as {"platform": "gpu" or
    "tpu", "name": ..., "compute_capability": (major, minor) or None}, or
    None on a CPU (or when the backend cannot say)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            return _jax_accelerator()
        if backend == "tensorflow":
            return _tensorflow_accelerator()
    except Exception:  # noqa: BLE001 - no device to ask: treated as a CPU
        pass
    return None


def _jax_accelerator():
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    capability = getattr(device, "compute_capability", None)  # e.g. "9.0"
    return {
        "platform": device.platform,
        "name": str(device.device_kind),
        "compute_capability": (
            tuple(int(part) for part in str(capability).split(".")[:2]) if capability else None
        ),
    }


def _tensorflow_accelerator():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")  # e.g. (9, 0)
    return {
        "platform": "gpu",
        "name": str(details.get("device_name", gpus[0].name)),
        "compute_capability": tuple(capability) if capability else None,
    }


def device_name():
    """The accelerator Keras computes on, or the CPU."""
    device = accelerator()
    if device is not None:
        return device["name"]
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
