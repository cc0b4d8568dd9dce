"""The TensorFlow and JAX train steps compute the same numbers.

From identical weights, batch and noise, both backends give the same loss
terms (rtol 1e-5) and the same gradients (1e-4 relative in global norm; a
conv bias feeding straight into batch norm has a true gradient of zero, so
per-variable relative errors are meaningless there).

The batch has 16 examples: with 6, one InfoGAN initialisation in four gave a
3e-3 global difference (losses still equal to 1e-7), because the backward pass
of batch norm over so few examples amplifies float32 rounding; with 16 the same
initialisation agrees to 3e-6 in every variable.
"""

import keras
import numpy as np
import pytest

import kvae
from helpers import run_worker, run_worker_batch, tiny_resnet

CASES = {
    "resnet-learned": lambda: tiny_resnet("learned", side=16, channels=3),
    "resnet-pixel": lambda: tiny_resnet("pixel"),
    "infogan-computed": lambda: kvae.VAE(
        (28, 28, 1), 4, net="infogan", net_config={"fc_dim": 128}, gamma="computed"
    ),
    "stage2-learned": lambda: kvae.VAE(
        (6,), 6, net="stage2", net_config={"second_dim": 32}, gamma="learned"
    ),
}


@pytest.fixture(scope="module")
def parity_runs(tmp_path_factory):
    """Every case's model, batch and noise saved once; the JAX side computed
    in one worker process for all cases, the TensorFlow side here (the test
    process runs TensorFlow; test_in_process_gradients_match_the_worker
    checks that the two harnesses agree)."""
    folder = tmp_path_factory.mktemp("parity")
    jobs, on_tf, paths = [], {}, {}
    for name in sorted(CASES):
        keras.utils.set_random_seed(4)
        model = CASES[name]()
        rng = np.random.default_rng(11)
        x = rng.random((16, *model.data_shape)).astype("float32")
        noise = rng.normal(size=(16, model.latent_dim)).astype("float32")
        model.save(folder / f"{name}.keras")
        np.savez(folder / f"{name}-inputs.npz", x=x, noise=noise)
        jobs.append(
            (
                "gradients",
                folder / f"{name}.keras",
                folder / f"{name}-inputs.npz",
                folder / f"{name}-jax.npz",
            )
        )
        loaded = kvae.load(folder / f"{name}.keras", compile=False)
        terms, gradients = loaded.loss_and_gradients(x, noise=noise)
        on_tf[name] = {
            **{key: keras.ops.convert_to_numpy(value) for key, value in terms.items()},
            **{f"grad_{i}": keras.ops.convert_to_numpy(g) for i, g in enumerate(gradients)},
        }
        paths[name] = [v.path for v in loaded.trainable_variables]
    results = run_worker_batch("jax", jobs, folder)
    return {
        name: (on_tf[name], np.load(folder / f"{name}-jax.npz"), paths[name], result["paths"])
        for name, result in zip(sorted(CASES), results)
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_tensorflow_and_jax_give_the_same_loss_and_gradients(parity_runs, name):
    on_tf, on_jax, tf_paths, jax_paths = parity_runs[name]
    assert tf_paths == jax_paths
    for term in ("loss", "recon", "kl", "mse"):
        np.testing.assert_allclose(on_jax[term], on_tf[term], rtol=1e-5, err_msg=term)
    count = len(tf_paths)
    tf_grads = np.concatenate([on_tf[f"grad_{i}"].ravel() for i in range(count)])
    jax_grads = np.concatenate([on_jax[f"grad_{i}"].ravel() for i in range(count)])
    assert np.linalg.norm(tf_grads) > 0
    relative = np.linalg.norm(jax_grads - tf_grads) / np.linalg.norm(tf_grads)
    print(f"{name}: global relative gradient difference {relative:.2e}")
    assert relative < 1e-4, f"global relative gradient difference {relative:.2e}"


def test_in_process_gradients_match_the_worker(tmp_path):
    """The worker computes what the model computes here (guards the harness)."""
    model = tiny_resnet("learned")
    rng = np.random.default_rng(2)
    x = rng.random((4, 8, 8, 1)).astype("float32")
    noise = rng.normal(size=(4, 4)).astype("float32")
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", x=x, noise=noise)
    run_worker(
        "tensorflow",
        "gradients",
        tmp_path / "model.keras",
        tmp_path / "inputs.npz",
        tmp_path / "w.npz",
    )
    terms, gradients = model.loss_and_gradients(x, noise=noise)
    from_worker = np.load(tmp_path / "w.npz")
    np.testing.assert_allclose(from_worker["loss"], float(terms["loss"]), rtol=1e-6)
    np.testing.assert_allclose(
        from_worker["grad_0"], keras.ops.convert_to_numpy(gradients[0]), rtol=1e-5
    )
