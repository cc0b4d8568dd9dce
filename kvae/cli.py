"""What kvae's commands share: one-line usage errors, argument types, atomic
JSON files, file digests and the name of the device that ran."""

import argparse
import hashlib
import json
import math
import os
import platform
from pathlib import Path

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting."""

    def error(self, message):
        raise UsageError(message)


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (got {text})")
    return value


def positive_int_or_auto(text):
    """An integer >= 1, or "auto" (the caller resolves it)."""
    return "auto" if text == "auto" else positive_int(text)


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 (got {text})")
    return value


def positive_float(text):
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text})")
    return value


def non_negative_float(text):
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value


def write_json(path, value):
    """Write `value` as JSON to `path` atomically (a synced temporary file,
    then a rename): a crash leaves the old file or the new one."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def file_digest(path, algorithm="sha256"):
    """The hex digest of a file's bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def accelerator():
    """The first accelerator Keras computes on, as {"platform": "gpu" or
    "tpu", "name": ..., "compute_capability": (major, minor) or None}, or None on a
    CPU (or when the backend cannot say). The one place kvae asks the
    backend about its device (`device_name`, `models.auto_precision`)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                capability = getattr(device, "compute_capability", None)  # e.g. "9.0"
                return {
                    "platform": device.platform,
                    "name": str(device.device_kind),
                    "compute_capability": (
                        tuple(int(part) for part in str(capability).split(".")[:2])
                        if capability
                        else None
                    ),
                }
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                capability = details.get("compute_capability")  # e.g. (9, 0)
                return {
                    "platform": "gpu",
                    "name": str(details.get("device_name", gpus[0].name)),
                    "compute_capability": tuple(capability) if capability else None,
                }
    except Exception:  # noqa: BLE001 - no device to ask: treated as a CPU
        pass
    return None


def device_name():
    """The accelerator Keras computes on, or the CPU."""
    device = accelerator()
    if device is not None:
        return device["name"]
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
