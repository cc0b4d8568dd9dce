"""Shared test helpers."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("backend_worker.py")

TINY_RESNET = {"base_dim": 4, "num_scale": 2, "fc_dim": 8}
"""A ResNet small enough for CPU tests, same layout as the real one."""


def tiny_resnet(gamma="computed", side=8, channels=1, latent_dim=4, **kwargs):
    import kvae

    return kvae.VAE(
        (side, side, channels),
        latent_dim,
        net="resnet",
        net_config=TINY_RESNET,
        gamma=gamma,
        **kwargs,
    )


def random_images(n, side=8, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, side, side, channels)).astype("float32")


PARALLEL_STEPS = 3
"""Steps of the one-device / two-device comparisons."""

PARALLEL_CASES = {
    "resnet-computed": (lambda: tiny_resnet("computed", side=8), 8),
    "infogan-learned": (lambda: _infogan("learned"), 8),
}
"""(build, global batch) of the data-parallel equivalence tests."""


def _infogan(gamma):
    import kvae

    return kvae.VAE((8, 8, 1), 4, net="infogan", net_config={"fc_dim": 16}, gamma=gamma)


def model_outputs(model, inputs):
    """encode / decode / reconstruct on inputs["x"], inputs["z"] as NumPy;
    called in the same order in and out of process, since the InfoGAN's
    spectral-norm state moves on every forward pass."""
    from keras import ops

    mu, log_sigma = model.encode(inputs["x"])
    decoded = model.decode(inputs["z"])
    outputs = {"mu": mu, "log_sigma": log_sigma}
    if isinstance(decoded, (list, tuple)):  # per-pixel sigma, floored or not
        outputs["log_gamma"] = model.observation.log_gamma(decoded[1])
        decoded = decoded[0]
    outputs["decoded"] = decoded
    outputs["reconstruction"] = model.reconstruct(inputs["x"])
    return {key: ops.convert_to_numpy(value) for key, value in outputs.items()}


def run_worker(backend, *args, timeout=300):
    """Run tests/backend_worker.py in a fresh process on `backend`; return
    the JSON object it prints last."""
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"worker {args} on {backend} failed:\n{result.stdout}\n{result.stderr}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_worker_batch(backend, jobs, folder, timeout=600):
    """Run many worker jobs [(command, *arguments), ...] in one fresh process
    on `backend`; return their results in order."""
    path = Path(folder) / f"jobs-{backend}.json"
    path.write_text(json.dumps([[str(part) for part in job] for job in jobs]))
    result = run_worker(backend, "batch", path, timeout=timeout)
    assert result["backend"] == backend
    return result["results"]


def write_idx(path, array):
    """Write `array` as a uint8 idx file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())
