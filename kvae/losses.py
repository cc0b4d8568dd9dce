"""The loss terms of the VAE, as small pure functions on `keras.ops`.

Every function takes and returns float32 tensors (inputs are cast), so the
same code serves mixed-precision models, whose decoders may compute in
float16. Reductions follow the original TensorFlow code bases of Dai & Wipf
(TwoStageVAE) and Asperti & Trentin (BalancingVAE): a **sum** over the
pixels (or latent dimensions) of one example, then a **mean** over the batch.

References:
    Berger & Sebag, "Variational Auto-Encoders: not all failures are equal",
        2020 (seed 000), Eqs. (10) and (11).
    Asperti & Trentin, "Balancing Reconstruction Error and Kullback-Leibler
        Divergence in Variational Autoencoders", IEEE Access 2020 (seed 003),
        Eqs. (4), (8) and (10), and Section IV.
"""

import math

import numpy as np
from keras import ops

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
"""The constant 1/2 log(2 pi) of the Gaussian log density (0.91893...)."""

INACTIVE_THRESHOLD = 0.8
"""A latent whose mean posterior variance reaches this is inactive
(Asperti & Trentin 2020, footnote 3)."""


def _float32(*tensors):
    return [ops.cast(t, "float32") for t in tensors]


def _example_axes(x):
    """All axes of `x` but the first (batch) axis."""
    return tuple(range(1, len(x.shape)))


def gaussian_nll_per_example(x, x_mean, log_gamma):
    """Negative log-density of each example of `x` under N(x_mean, gamma^2 I).

    Formula, per example, summed over its D elements i:

        sum_i (x_i - x_mean_i)^2 / (2 gamma_i^2) + log gamma_i + 1/2 log(2 pi)

    With a scalar gamma this is Berger & Sebag 2020, Eq. (10) (plus the
    constant D/2 log 2 pi that the originals keep); with a per-element gamma
    it is Eq. (11). With x_mean = 0 and log_gamma = 0 it is -log N(x; 0, I),
    and with the posterior's (mu, log sigma) it is -log q(z|x).

    Args:
        x: tensor of shape (B, ...), the data.
        x_mean: tensor of the same shape, the mean.
        log_gamma: the log standard deviation: a scalar, or a tensor
            broadcastable to `x` (per-pixel sigma).

    Returns:
        float32 tensor of shape (B,).
    """
    x, x_mean, log_gamma = _float32(x, x_mean, log_gamma)
    return ops.sum(_gaussian_nll_elements(x, x_mean, log_gamma), axis=_example_axes(x))


def _gaussian_nll_elements(x, x_mean, log_gamma):
    """(x - x_mean)^2 / (2 gamma^2) + log gamma + 1/2 log(2 pi), element by
    element (float32 inputs)."""
    return 0.5 * ops.square(x - x_mean) * ops.exp(-2.0 * log_gamma) + log_gamma + HALF_LOG_2PI


def sigma_warmup_weight(step, warmup_steps):
    """How far the per-pixel sigma of the sigma warm-up has taken over
    (`pooled_log_sigma`), at training step `step` (0-based):

        a = clip(step / W - 1, 0, 1),

    0 for the first W = `warmup_steps` steps (one shared sigma), then rising
    linearly to 1 over the next W (each pixel its own). An opt-in deviation
    of kvae's (docs/results.md part 1), not from a paper.
    """
    step = ops.cast(step, "float32")
    return ops.clip(step / float(warmup_steps) - 1.0, 0.0, 1.0)


def pooled_log_sigma(log_sigma, pooled, weight):
    """The decoder's per-pixel log sigma drawn towards one shared value:

        log gamma_i = pooled + a (log sigma_i(z) - pooled),

    `pooled` the mean of log sigma_i(z) over the pixels and the batch (so
    that at a = 0 the model is the LS-VAE's, one learned scalar sigma, with
    the gradient reaching the decoder's sigma head through the mean), a the
    weight of `sigma_warmup_weight`. At a = 1 it is log sigma_i(z), the
    LV-VAE of Berger & Sebag 2020, Eq. (11).
    """
    log_sigma, pooled, weight = _float32(log_sigma, pooled, weight)
    return pooled + weight * (log_sigma - pooled)


def gaussian_nll(x, x_mean, log_gamma):
    """The reconstruction term of the loss: the mean over the batch of
    `gaussian_nll_per_example` (sum over pixels, mean over the batch, as
    the originals).

    Returns:
        A float32 scalar.
    """
    return ops.mean(gaussian_nll_per_example(x, x_mean, log_gamma))


def kl_standard_normal_per_example(mu, log_sigma):
    """KL(N(mu, sigma^2) || N(0, I)) of each diagonal Gaussian posterior.

    Formula, per example, summed over the latent dimensions j:

        1/2 sum_j (mu_j^2 + sigma_j^2 - 2 log sigma_j - 1)

    (Asperti & Trentin 2020, Eq. (4); the encoder outputs log sigma, the log
    standard deviation, as the originals).

    Args:
        mu: tensor of shape (B, K), the posterior means.
        log_sigma: tensor of shape (B, K), the posterior log standard
            deviations.

    Returns:
        float32 tensor of shape (B,).
    """
    mu, log_sigma = _float32(mu, log_sigma)
    per_dim = 0.5 * (ops.square(mu) + ops.exp(2.0 * log_sigma) - 2.0 * log_sigma - 1.0)
    return ops.sum(per_dim, axis=_example_axes(mu))


def kl_standard_normal(mu, log_sigma):
    """The KL term of the loss: the mean over the batch of
    `kl_standard_normal_per_example`.

    Returns:
        A float32 scalar.
    """
    return ops.mean(kl_standard_normal_per_example(mu, log_sigma))


def batch_mse(x, x_mean):
    """Mean squared error over every element of the batch.

    This is the `mse` of Asperti & Trentin 2020, Eq. (8)-(10): the mean of
    (x - x_mean)^2 over all B*D elements, the quantity that gamma^2 tracks.

    Returns:
        A float32 scalar.
    """
    x, x_mean = _float32(x, x_mean)
    return ops.mean(ops.square(x - x_mean))


def computed_gamma_update(gamma_square, mse):
    """One step of the computed-gamma rule of Asperti & Trentin 2020.

    Formula:

        m <- min(m, 0.99 m + 0.01 mse)

    A running estimate of the MSE that moves 1 % of the way towards the batch
    MSE only when the batch MSE is lower, so it never increases; gamma =
    sqrt(m) (Section IV and Eq. (10): the optimal gamma^2 is the MSE).

    Args:
        gamma_square: float32 scalar, the current m (initially 1).
        mse: float32 scalar, the batch MSE of the step's forward pass.

    Returns:
        The new m, a float32 scalar.
    """
    gamma_square, mse = _float32(gamma_square, mse)
    return ops.minimum(gamma_square, 0.99 * gamma_square + 0.01 * mse)


def mse_per_example(x, x_mean):
    """The mean squared error of each example, over its D elements; its
    mean over the batch is `batch_mse` (equal D per example).

    Returns:
        float32 tensor of shape (B,).
    """
    x, x_mean = _float32(x, x_mean)
    return ops.mean(ops.square(x - x_mean), axis=_example_axes(x))


def mean_per_example(values, like):
    """The mean of each example's elements of `values`, a scalar or a tensor
    broadcastable to `like` (B, ...), e.g. gamma or a per-pixel gamma.

    Returns:
        float32 tensor of shape (B,).
    """
    values, like = _float32(values, like)
    values = ops.broadcast_to(values, ops.shape(like))
    return ops.mean(values, axis=_example_axes(like))


def weighted_share(per_example, weights, total):
    """A replica's share of a weighted batch mean:

        sum_i w_i t_i / total,

    with `total` the sum of the weights over the whole (global) batch, so
    that the shares of all replicas add up to the weighted mean; on one
    device with unit weights it is the plain mean over the batch.

    Args:
        per_example: tensor (B,) or (B, K).
        weights: tensor (B,).
        total: scalar, sum of the weights over every replica.

    Returns:
        float32 scalar, or (K,) for (B, K) values.
    """
    per_example, weights, total = _float32(per_example, weights, total)
    if len(per_example.shape) > 1:
        weights = ops.reshape(weights, (-1,) + (1,) * (len(per_example.shape) - 1))
    return ops.sum(weights * per_example, axis=0) / total


def posterior_variance(log_sigma):
    """Mean over the batch of each latent's posterior variance sigma_j^2.

    Args:
        log_sigma: tensor of shape (B, K).

    Returns:
        float32 tensor of shape (K,).
    """
    (log_sigma,) = _float32(log_sigma)
    return ops.mean(ops.exp(2.0 * log_sigma), axis=0)


def count_active(variance, threshold=INACTIVE_THRESHOLD):
    """Number of latents whose mean posterior variance (K,) is below
    `threshold` (Asperti & Trentin 2020, footnote 3: a latent with mean
    sigma_j^2 >= 0.8 is inactive). Returns a float32 scalar."""
    (variance,) = _float32(variance)
    return ops.sum(ops.cast(ops.less(variance, threshold), "float32"))


def active_latents(log_sigma, threshold=INACTIVE_THRESHOLD):
    """Number of latents whose mean posterior variance is below `threshold`.

    A latent j is inactive (collapsed onto the prior) when the mean over the
    data of sigma_j^2 is at least 0.8 (Asperti & Trentin 2020, footnote 3);
    the others are active.

    Args:
        log_sigma: tensor of shape (B, K).
        threshold: float, the inactivity threshold on the mean variance.

    Returns:
        float32 scalar, the count of active latents in this batch.
    """
    return count_active(posterior_variance(log_sigma), threshold)


def gaussian_sample(mean, log_std, eps):
    """A draw from N(mean, exp(log_std)^2) given a standard normal eps:

        mean + exp(log_std) * eps

    the reparameterisation z = mu + sigma * eps of Kingma & Welling 2014
    (Eq. 10) for the posterior q(z|x), and the same formula for a draw from
    p(x|z) (x_mean, log gamma) or from stage 2's p(z|u) (z_mean, log
    gamma_z). kvae writes it here only.

    NumPy in, NumPy out (float32; the inference paths and the HTTP service),
    or keras tensors in, a tensor out (the train step, inside the graph).

    Args:
        mean: array or tensor (B, ...).
        log_std: a scalar or an array broadcastable to `mean`.
        eps: float32 draws from N(0, I) of mean's shape.
    """
    if isinstance(mean, np.ndarray):
        draw = mean + np.exp(np.asarray(log_std, np.float32)) * eps
        return draw.astype(np.float32, copy=False)
    return mean + ops.exp(log_std) * ops.cast(eps, mean.dtype)


def batch_terms(x, x_mean, log_gamma, mu, log_sigma, weights, count, kl_weight=1.0):
    """Every loss term of one forward pass, as this replica's share of the
    global batch means (`weighted_share`; the means themselves on one
    device):

        recon = mean_b gaussian_nll_per_example,  kl = mean_b kl_standard_normal_per_example,
        loss = recon + kl_weight * kl          (Asperti & Trentin 2020, Eq. (4)),

    with mse, the mean gamma, the per-latent mean posterior variance
    (latent_variance, (K,)) and the active count of this share.

    Args:
        x, x_mean: data and decoder means, (B, ...).
        log_gamma: scalar or per-pixel log gamma of p(x|z).
        mu, log_sigma: q(z|x), (B, K).
        weights: (B,) example weights (1 for an example, 0 for padding).
        count: the global sum of the weights.
        kl_weight: the weight of the KL term.

    Returns:
        dict of float32 tensors: loss, recon, kl, mse, gamma, active,
        latent_variance, count.
    """

    def share(per_example):
        return weighted_share(per_example, weights, count)

    recon = share(gaussian_nll_per_example(x, x_mean, log_gamma))
    kl = share(kl_standard_normal_per_example(mu, log_sigma))
    latent_variance = weighted_share(ops.exp(2.0 * log_sigma), weights, count)
    return {
        "loss": recon + kl_weight * kl,
        "recon": recon,
        "kl": kl,
        "mse": share(mse_per_example(x, x_mean)),
        "gamma": share(mean_per_example(ops.exp(log_gamma), x)),
        "active": count_active(latent_variance),
        "latent_variance": latent_variance,
        "count": count,
    }
