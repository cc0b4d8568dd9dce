"""The TensorFlow and JAX train steps compute the same numbers.

From identical weights, batch and noise, both backends give the same loss
terms (rtol 1e-5) and the same gradients (1e-4 relative in global norm; a
conv bias feeding straight into batch norm has a true gradient of zero, so
per-variable relative errors are meaningless there).

Why the batch's kinks are moved (issue 27). The gradient of a network with
ReLUs jumps where an input of a ReLU or leaky ReLU crosses 0. Two correct
implementations whose forward passes differ by rounding (TensorFlow with or
without oneDNN, XLA compiled for AVX-512 or AVX2, measured here at up to
4e-6 of a layer's largest value) put an input that lies within that
distance of 0 on different sides. On an AMD EPYC with XLA limited to AVX2
(and in TensorFlow without oneDNN) one of the 200,704 inputs of the InfoGAN
decoder's last ReLU was 2.5e-6 against -1.2e-7: one side passed the
gradient through that pixel, the other stopped it, which changed dL/d(bn2
output) by 41 % of its largest element, the decoder tensors before it by
2-5 % of theirs (deconv2, bn1, dense1) and the whole gradient by 2.7e-3,
while the losses and every activation agreed to 1e-6. Gradients of the
same state moved by only 1e-6 when its inputs were perturbed by one
float32 ulp, although its most nearly degenerate batch-norm channel (batch
variance 3 epsilon, in the decoder's first batch norm) was in the path: the
jump, not batch-norm conditioning, is the cause. Any batch large enough to
test convolutions has inputs that close to 0 (tens within 1e-4 of each
layer's largest value), so the test moves those few by constant offsets,
the same on both backends, out to `KINK_MARGIN` (ten times the largest
rounding difference seen): no rounding can then cross a kink.
"""

import keras
import numpy as np
import pytest

import kvae
from helpers import (
    apply_kink_offsets,
    kink_inputs,
    kink_offsets,
    run_worker,
    run_worker_batch,
    tiny_resnet,
)

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

GRADIENT_RTOL = 1e-4
"""Bound on |g_jax - g_tf| / |g_tf| over all variables together."""


def flat_gradients(gradients):
    return np.concatenate([np.ravel(keras.ops.convert_to_numpy(g)) for g in gradients])


def relative_difference(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def tensorflow_side(path, x, noise, offsets, **changes):
    """Loss terms and gradients of the saved model here (TensorFlow), with
    the kink offsets; `changes` set attributes first (negative controls)."""
    model = kvae.load(path, compile=False)
    for name, value in changes.items():
        setattr(model, name, value)
    with apply_kink_offsets(model, offsets):
        terms, gradients = model.loss_and_gradients(x, noise=noise)
    return (
        {key: keras.ops.convert_to_numpy(value) for key, value in terms.items()},
        flat_gradients(gradients),
        [v.path for v in model.trainable_variables],
    )


@pytest.fixture(scope="module")
def parity_runs(tmp_path_factory):
    """Every case's model, batch, noise and kink offsets saved once; the JAX
    side computed in one worker process for all cases, the TensorFlow side
    here (the test process runs TensorFlow;
    test_in_process_gradients_match_the_worker checks that the two harnesses
    agree)."""
    folder = tmp_path_factory.mktemp("parity")
    jobs, runs = [], {}
    for name in sorted(CASES):
        keras.utils.set_random_seed(4)
        model = CASES[name]()
        rng = np.random.default_rng(11)
        x = rng.random((16, *model.data_shape)).astype("float32")
        noise = rng.normal(size=(16, model.latent_dim)).astype("float32")
        model.save(folder / f"{name}.keras")
        offsets = kink_offsets(kvae.load(folder / f"{name}.keras", compile=False), x, noise)
        np.savez(folder / f"{name}-inputs.npz", x=x, noise=noise)
        np.savez(folder / f"{name}-offsets.npz", **offsets)
        jobs.append(
            (
                "gradients",
                folder / f"{name}.keras",
                folder / f"{name}-inputs.npz",
                folder / f"{name}-jax.npz",
                folder / f"{name}-offsets.npz",
            )
        )
        runs[name] = (folder / f"{name}.keras", x, noise, offsets)
    results = run_worker_batch("jax", jobs, folder)
    parity = {}
    for name, result in zip(sorted(CASES), results):
        path, x, noise, offsets = runs[name]
        on_tf, tf_grads, tf_paths = tensorflow_side(path, x, noise, offsets)
        on_jax = np.load(folder / f"{name}-jax.npz")
        jax_grads = np.concatenate([on_jax[f"grad_{i}"].ravel() for i in range(len(tf_paths))])
        parity[name] = {
            "terms": (on_tf, on_jax),
            "gradients": (tf_grads, jax_grads),
            "paths": (tf_paths, result["paths"]),
            "inputs": runs[name],
        }
    return parity


@pytest.mark.parametrize("name", sorted(CASES))
def test_tensorflow_and_jax_give_the_same_loss_and_gradients(parity_runs, name):
    run = parity_runs[name]
    tf_paths, jax_paths = run["paths"]
    assert tf_paths == jax_paths
    on_tf, on_jax = run["terms"]
    for term in ("loss", "recon", "kl", "mse"):
        np.testing.assert_allclose(on_jax[term], on_tf[term], rtol=1e-5, err_msg=term)
    tf_grads, jax_grads = run["gradients"]
    assert np.linalg.norm(tf_grads) > 0
    relative = relative_difference(jax_grads, tf_grads)
    print(f"{name}: global relative gradient difference {relative:.2e}")
    assert relative < GRADIENT_RTOL, f"global relative gradient difference {relative:.2e}"


def test_the_offsets_keep_every_kink_input_away_from_zero(parity_runs):
    """The precondition of the comparison: with the offsets, no input of a
    kink lies within KINK_MARGIN of 0 (relative to its layer), and the
    offsets moved only the few inputs that did (the batch is the test's)."""
    from helpers import KINK_MARGIN

    path, x, noise, offsets = parity_runs["infogan-computed"]["inputs"]
    model = kvae.load(path, compile=False)
    before = kink_inputs(model, x, noise)
    with apply_kink_offsets(model, offsets):
        after = kink_inputs(model, x, noise)
    moved = 0
    for name, values in after.items():
        seen = values + offsets.get(name, 0.0)
        assert np.abs(seen).min() >= 0.99 * KINK_MARGIN * np.abs(seen).max(), name
        close = np.abs(before[name]) < KINK_MARGIN * np.abs(before[name]).max()
        moved += int(close.sum())
    assert 0 < moved < 1e-3 * sum(v.size for v in before.values())


def test_the_gradient_check_catches_a_kink_flip_and_a_small_mistake(parity_runs):
    """Negative controls for the 1e-4 bound, on the TensorFlow side alone:
    (1) the jump the offsets guard against: the decoder's last ReLU inputs
    that lay within KINK_MARGIN of 0 (those the offsets moved, any of which a
    rounding difference could have flipped) put on the other side change the
    gradient by far more than the bound; (2) a real mistake in a step that
    leaves the loss nearly unchanged, a KL weight of 1.01 instead of 1, is
    caught too."""
    path, x, noise, offsets = parity_runs["infogan-computed"]["inputs"]
    _, reference, _ = tensorflow_side(path, x, noise, offsets)
    moved = offsets["decoder/relu2"] != 0
    model = kvae.load(path, compile=False)
    with apply_kink_offsets(model, offsets):
        seen = kink_inputs(model, x, noise)["decoder/relu2"] + offsets["decoder/relu2"]
    flipped = {**offsets, "decoder/relu2": offsets["decoder/relu2"] - 2 * np.where(moved, seen, 0)}
    _, jumped, _ = tensorflow_side(path, x, noise, flipped.copy())
    assert relative_difference(jumped, reference) > 10 * GRADIENT_RTOL
    _, mistaken, _ = tensorflow_side(path, x, noise, offsets, kl_weight=1.01)
    assert relative_difference(mistaken, reference) > 10 * GRADIENT_RTOL


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
