"""Loss terms against NumPy implementations of the papers' formulas."""

import math

import numpy as np
import pytest
from keras import ops

from kvae import losses

RTOL = 1e-5
rng = np.random.default_rng(1234)


def numpy_gaussian_nll(x, x_mean, gamma):
    """Berger & Sebag 2020, Eq. (10)/(11) plus D/2 log 2 pi, written from the
    density: -log N(x; x_mean, gamma^2) summed per example, batch mean."""
    x, x_mean = x.astype(np.float64), x_mean.astype(np.float64)
    gamma = np.broadcast_to(np.asarray(gamma, np.float64), x.shape)
    density = np.exp(-((x - x_mean) ** 2) / (2 * gamma**2)) / (np.sqrt(2 * np.pi) * gamma)
    per_example = -np.log(density).reshape(len(x), -1).sum(axis=1)
    return per_example.mean()


def numpy_kl(mu, log_sigma):
    """Closed-form KL of N(mu, sigma^2) to N(0, 1) per dimension
    (Asperti & Trentin 2020, Eq. (4)), summed, batch mean."""
    mu, sigma = mu.astype(np.float64), np.exp(log_sigma.astype(np.float64))
    per_dim = np.log(1 / sigma) + (sigma**2 + mu**2) / 2 - 0.5
    return per_dim.sum(axis=1).mean()


def as_float(tensor):
    return float(ops.convert_to_numpy(tensor))


@pytest.mark.parametrize("gamma", [1.0, 0.3, 0.05])
def test_gaussian_nll_scalar_gamma(gamma):
    x = rng.random((5, 6, 6, 3)).astype("float32")
    x_mean = rng.random((5, 6, 6, 3)).astype("float32")
    got = as_float(losses.gaussian_nll(x, x_mean, math.log(gamma)))
    np.testing.assert_allclose(got, numpy_gaussian_nll(x, x_mean, gamma), rtol=RTOL)


def test_gaussian_nll_per_pixel_gamma():
    x = rng.random((4, 5, 5, 2)).astype("float32")
    x_mean = rng.random((4, 5, 5, 2)).astype("float32")
    log_gamma = rng.uniform(-3, 1, size=x.shape).astype("float32")
    got = as_float(losses.gaussian_nll(x, x_mean, log_gamma))
    np.testing.assert_allclose(
        got,
        numpy_gaussian_nll(x, x_mean, np.exp(log_gamma.astype(np.float64))),
        rtol=RTOL,
    )


def test_gaussian_nll_on_vectors_and_reduction():
    # Sum over dimensions, mean over the batch: doubling the batch by
    # repetition leaves it unchanged; doubling the dimensions doubles it.
    x = rng.normal(size=(7, 3)).astype("float32")
    x_mean = rng.normal(size=(7, 3)).astype("float32")
    single = as_float(losses.gaussian_nll(x, x_mean, 0.0))
    np.testing.assert_allclose(single, numpy_gaussian_nll(x, x_mean, 1.0), rtol=RTOL)
    batch_twice = as_float(losses.gaussian_nll(np.tile(x, (2, 1)), np.tile(x_mean, (2, 1)), 0.0))
    dims_twice = as_float(losses.gaussian_nll(np.tile(x, (1, 2)), np.tile(x_mean, (1, 2)), 0.0))
    np.testing.assert_allclose(batch_twice, single, rtol=RTOL)
    np.testing.assert_allclose(dims_twice, 2 * single, rtol=RTOL)


def test_mse_sigma_gives_squared_error_plus_constant():
    # sigma^2 = 1/2: NLL = sum of squared errors + D (log sigma + 1/2 log 2 pi).
    x = rng.random((3, 4, 4, 1)).astype("float32")
    x_mean = rng.random((3, 4, 4, 1)).astype("float32")
    dims = 16
    squared_error = ((x - x_mean) ** 2).reshape(3, -1).sum(1).mean()
    expected = squared_error + dims * (0.5 * math.log(0.5) + 0.5 * math.log(2 * math.pi))
    got = as_float(losses.gaussian_nll(x, x_mean, 0.5 * math.log(0.5)))
    np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_kl_standard_normal():
    mu = rng.normal(size=(6, 10)).astype("float32")
    log_sigma = rng.uniform(-2, 1, size=(6, 10)).astype("float32")
    got = as_float(losses.kl_standard_normal(mu, log_sigma))
    np.testing.assert_allclose(got, numpy_kl(mu, log_sigma), rtol=RTOL)
    zero = as_float(losses.kl_standard_normal(np.zeros((2, 3)), np.zeros((2, 3))))
    assert zero == 0.0


def test_kl_matches_monte_carlo_estimate():
    # An independent check of the closed form: E_q[log q - log p].
    mu = np.array([[0.5, -1.0]], np.float32)
    log_sigma = np.array([[-0.3, 0.2]], np.float32)
    sigma = np.exp(log_sigma)
    z = mu + sigma * np.random.default_rng(0).normal(size=(400_000, 2))
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    log_p = -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
    estimate = (log_q - log_p).sum(axis=1).mean()
    np.testing.assert_allclose(
        as_float(losses.kl_standard_normal(mu, log_sigma)), estimate, rtol=1e-2
    )


def test_batch_mse():
    x = rng.random((4, 3, 3, 2)).astype("float32")
    x_mean = rng.random((4, 3, 3, 2)).astype("float32")
    expected = np.mean((x.astype(np.float64) - x_mean) ** 2)
    np.testing.assert_allclose(as_float(losses.batch_mse(x, x_mean)), expected, rtol=RTOL)


def test_computed_gamma_update_rule():
    m = 1.0
    for mse in [0.5, 2.0, 0.1, 0.1, 0.9, 1e-4]:
        expected = min(m, 0.99 * m + 0.01 * mse)
        got = as_float(losses.computed_gamma_update(m, mse))
        np.testing.assert_allclose(got, expected, rtol=RTOL)
        assert got <= m
        m = got
    # A batch MSE above m leaves m unchanged.
    assert as_float(losses.computed_gamma_update(0.25, 3.0)) == 0.25


def test_active_latents_and_posterior_variance():
    # Mean sigma^2 per latent: [1.0, 0.01, 0.81, 0.7] -> active: 2 (< 0.8).
    sigma = np.array([[1.0, 0.1, 0.9, np.sqrt(0.6)], [1.0, 0.1, 0.9, np.sqrt(0.8)]])
    log_sigma = np.log(sigma).astype("float32")
    variance = ops.convert_to_numpy(losses.posterior_variance(log_sigma))
    np.testing.assert_allclose(variance, [1.0, 0.01, 0.81, 0.7], rtol=RTOL)
    assert as_float(losses.active_latents(log_sigma)) == 2.0
    assert as_float(losses.active_latents(log_sigma, threshold=0.9)) == 3.0


def test_loss_terms_are_float32_for_float16_inputs():
    x = rng.random((2, 4)).astype("float16")
    assert ops.convert_to_numpy(losses.gaussian_nll(x, x, np.float16(0))).dtype == np.float32
    assert ops.convert_to_numpy(losses.kl_standard_normal(x, x)).dtype == np.float32


# -- the sigma warm-up (issue 17, opt-in for gamma="pixel") --------------------------------------


def test_sigma_warmup_weight_and_pooling_follow_their_formulas():
    """a = clip(step / W - 1, 0, 1); log gamma_i = m + a (log sigma_i - m)."""
    steps = np.array([0, 1, 4, 5, 6, 8, 9, 100])
    expected = np.clip(steps / 4.0 - 1.0, 0.0, 1.0)
    got = [float(ops.convert_to_numpy(losses.sigma_warmup_weight(s, 4))) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)
    log_sigma = np.random.default_rng(3).normal(size=(4, 6)).astype("float32")
    pooled = log_sigma.mean()
    for weight in (0.0, 0.25, 1.0):
        got = ops.convert_to_numpy(losses.pooled_log_sigma(log_sigma, pooled, weight))
        np.testing.assert_allclose(got, pooled + weight * (log_sigma - pooled), rtol=1e-6)


def test_sigma_warmup_shares_sigma_then_hands_over_and_resumes(tmp_path):
    """Trained with fit, the warm-up model's step count is the optimizer's;
    its NLL is the Gaussian NLL (NumPy) under the pooled-then-blended log
    sigma of the decoder's own outputs; it survives a .keras round trip;
    the default model's weights list does not change."""
    import keras

    import kvae

    def pixel_vae(**options):
        return kvae.VAE(
            (6,),
            2,
            net="mlp",
            net_config={"width": 8, "num_blocks": 1},
            gamma="pixel",
            seed=1,
            **options,
        )

    warm, plain = pixel_vae(sigma_warmup=4), pixel_vae()
    assert len(warm.weights) == len(plain.weights) + 1  # only the step count is new
    rng = np.random.default_rng(1)
    x = rng.random((5, 6)).astype("float32")
    noise = rng.normal(size=(5, 2)).astype("float32")
    data = rng.random((60, 6)).astype("float32")

    def nll_from_numpy(model, step):
        z = ops.convert_to_numpy(losses.gaussian_sample(*model.encode(x), noise))
        x_mean, log_sigma = (ops.convert_to_numpy(t).astype(np.float64) for t in model.decode(z))
        weight = np.clip(step / 4.0 - 1.0, 0.0, 1.0)
        log_gamma = log_sigma.mean() + weight * (log_sigma - log_sigma.mean())
        elements = (x - x_mean) ** 2 / (2 * np.exp(2 * log_gamma)) + log_gamma
        return (elements + 0.5 * np.log(2 * np.pi)).sum(axis=1).mean()

    warm.compile(optimizer=keras.optimizers.Adam(1e-3))
    for steps in (0, 2, 6, 10):  # a = 0, 0, 0.5, 1 after these many steps in all
        if steps:
            done = int(warm.optimizer.iterations)
            warm.fit(data[: 6 * (steps - done)], batch_size=6, epochs=1, verbose=0, shuffle=False)
        assert float(ops.convert_to_numpy(warm.observation.warmup_step)) == steps
        recon = float(ops.convert_to_numpy(warm.compute_terms(x, noise=noise)["recon"]))
        assert recon == pytest.approx(nll_from_numpy(warm, steps), rel=1e-5)
    path = tmp_path / "warm.keras"
    warm.save(path)
    loaded = kvae.load(path)
    assert loaded.sigma_warmup == 4
    assert float(ops.convert_to_numpy(loaded.observation.warmup_step)) == 10
    with pytest.raises(ValueError, match="sigma_warmup"):
        kvae.VAE((6,), 2, net="mlp", gamma="learned", sigma_warmup=3)
    with pytest.raises(ValueError, match="sigma_warmup"):
        pixel_vae(sigma_warmup=2.5)
