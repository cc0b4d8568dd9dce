"""Evaluation metrics: the math as small pure functions, and the passes of a
model over a set of examples that feed them.

The pure functions take and return NumPy (float64 where precision matters):
`frechet_distance`, `gaussian_statistics`, `variance_law`,
`inactive_latents`, `bits_per_dim`, `log_mean_exp`. The model passes
(`encode`, `elbo`, `reconstruction_mse`, `reconstruction_gain`) run the
model in inference mode batch by batch and return NumPy.

References:
    Heusel et al. 2017 (the Frechet distance of Inception features, FID).
    Asperti & Trentin 2020 (seed 003), Eq. (7) and footnote 3.
    Asperti 2019 (seed 004), Sec. 4 (variance law per variable) and Sec. 5
        (reconstruction gain).
    Berger & Sebag 2020 (seed 000), Tables 1-2 (ELBO in bits per pixel,
        gamma terms included).
    Burda et al. 2016 (the importance-weighted bound).
"""

import math

import numpy as np

from kvae import seeds
from kvae.data import as_float
from kvae.losses import INACTIVE_THRESHOLD

# -- pure math ----------------------------------------------------------------------


def gaussian_statistics(features):
    """Mean and covariance of feature vectors, as the FID (unbiased
    covariance, np.cov's default).

    Args:
        features: array of shape (N, F), N >= 2.

    Returns:
        (mean (F,), covariance (F, F)), float64.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must have shape (N >= 2, F). Received: {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """The Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b):

        ||mean_a - mean_b||^2 + Tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))

    (Heusel et al. 2017, the FID formula). Tr (cov_a cov_b)^(1/2) is computed
    as the sum of the square roots of the eigenvalues of the symmetric
    matrix cov_a^(1/2) cov_b cov_a^(1/2), which has the same eigenvalues as
    cov_a cov_b; negative round-off eigenvalues are set to 0. This needs
    no general matrix square root and stays real.

    Args:
        mean_a, mean_b: arrays of shape (F,).
        cov_a, cov_b: symmetric positive semi-definite arrays (F, F).

    Returns:
        float, >= 0 up to round-off.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    if (
        mean_a.shape != mean_b.shape
        or cov_a.shape != cov_b.shape
        or cov_a.shape != (len(mean_a), len(mean_a))
    ):
        raise ValueError(
            f"Mismatched statistics: means {mean_a.shape} and {mean_b.shape}, "
            f"covariances {cov_a.shape} and {cov_b.shape}."
        )
    eigenvalues_a, eigenvectors_a = np.linalg.eigh((cov_a + cov_a.T) / 2.0)
    sqrt_cov_a = (eigenvectors_a * np.sqrt(np.clip(eigenvalues_a, 0.0, None))) @ eigenvectors_a.T
    product = sqrt_cov_a @ cov_b @ sqrt_cov_a
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2.0)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def variance_law(mu, log_sigma):
    """The variance law of each latent (Asperti & Trentin 2020, Eq. (7);
    Asperti 2019, Sec. 4): Var_n(mu_nj) + mean_n sigma_nj^2, which is about 1
    for a latent whose aggregate posterior matches the N(0, 1) prior.

    Args:
        mu, log_sigma: arrays of shape (N, K), the posterior of N examples.

    Returns:
        dict of float64 arrays of shape (K,):
            var_mu: Var_n(mu_nj) (the population variance, 1/N);
            mean_sigma2: mean_n sigma_nj^2;
            mean_sigma: mean_n sigma_nj;
            law: var_mu + mean_sigma2 (the paper's variance law);
            law_mean_sigma: var_mu + mean_sigma, the variant the original
                BalancingVAE code printed (mean sigma, not sigma^2).
    """
    mu = np.asarray(mu, np.float64)
    sigma = np.exp(np.asarray(log_sigma, np.float64))
    if mu.ndim != 2 or mu.shape != sigma.shape:
        raise ValueError(
            f"mu and log_sigma must both have shape (N, K). Received: {mu.shape} and {sigma.shape}"
        )
    var_mu = mu.var(axis=0)
    mean_sigma2 = np.mean(sigma**2, axis=0)
    mean_sigma = sigma.mean(axis=0)
    return {
        "var_mu": var_mu,
        "mean_sigma2": mean_sigma2,
        "mean_sigma": mean_sigma,
        "law": var_mu + mean_sigma2,
        "law_mean_sigma": var_mu + mean_sigma,
    }


def inactive_latents(mean_sigma2, threshold=INACTIVE_THRESHOLD):
    """Which latents are inactive: mean_n sigma_nj^2 >= threshold (0.8,
    Asperti & Trentin 2020, footnote 3).

    Returns:
        bool array of shape (K,).
    """
    return np.asarray(mean_sigma2) >= threshold


def bits_per_dim(nats, num_dims):
    """Convert nats per example to bits per dimension: nats / (D ln 2)."""
    return float(nats) / (num_dims * math.log(2.0))


def log_mean_exp(values, axis=0):
    """log(mean(exp(values))) along `axis`, computed stably in float64."""
    values = np.asarray(values, np.float64)
    peak = values.max(axis=axis, keepdims=True)
    return np.squeeze(peak, axis=axis) + np.log(np.mean(np.exp(values - peak), axis=axis))


# -- passes of a model over examples ---------------------------------------------


def batches(array, batch_size):
    """Consecutive float32 batches of an array (uint8 images scaled to [0, 1])."""
    for start in range(0, len(array), batch_size):
        yield as_float(array[start : start + batch_size])


def encode(model, examples, batch_size=256):
    """(mu, log_sigma) of every example, float32 NumPy of shape (N, K)."""
    from keras import ops

    mus, log_sigmas = [], []
    for batch in batches(examples, batch_size):
        mu, log_sigma = model.encode(batch)
        mus.append(ops.convert_to_numpy(mu))
        log_sigmas.append(ops.convert_to_numpy(log_sigma))
    return np.concatenate(mus), np.concatenate(log_sigmas)


def reconstruct(model, examples, sample=False, seed=0, batch_size=256):
    """Reconstructions (decoder means) of every example, from mu or from a
    sampled z; batch b draws from `seeds.reconstruction_batch_seed(seed, b)`,
    so the result is reproducible for a given batch size."""
    return np.concatenate(
        [
            model.reconstruct(
                batch,
                sample=sample,
                seed=seeds.reconstruction_batch_seed(seed, index) if sample else None,
            )
            for index, batch in enumerate(batches(examples, batch_size))
        ]
    )


def elbo_terms(model, x, eps):
    """The terms of the bound for one batch and one draw z = mu + sigma * eps,
    per example, KL weight 1, every gamma term included:

        log_likelihood = log p(x|z)                 (Berger & Sebag Eqs. 10-11)
        kl = KL(q(z|x) || N(0, I))                   (analytic, Asperti & Trentin Eq. 4)
        log_weight = log p(x|z) + log N(z; 0, I) - log q(z|x)

    Batch norm is in inference mode.

    Args:
        model: a `kvae.VAE`.
        x: float32 batch (B, *data_shape).
        eps: float32 (B, latent_dim), the standard normal draw.

    Returns:
        dict of float64 NumPy arrays of shape (B,).
    """
    from keras import ops

    from kvae import losses

    mu, log_sigma = model.encode(x)
    z = model.sample_posterior(mu, log_sigma, noise=eps)
    x_mean, log_gamma = model.decode_distribution(z)
    log_likelihood = -losses.gaussian_nll_per_example(x, x_mean, log_gamma)
    log_prior = -losses.gaussian_nll_per_example(z, 0.0, 0.0)
    log_posterior = -losses.gaussian_nll_per_example(z, mu, log_sigma)
    terms = {
        "log_likelihood": log_likelihood,
        "kl": losses.kl_standard_normal_per_example(mu, log_sigma),
        "log_weight": log_likelihood + log_prior - log_posterior,
    }
    return {key: ops.convert_to_numpy(value).astype(np.float64) for key, value in terms.items()}


def elbo(model, examples, samples=1, seed=0, batch_size=256):
    """The evidence lower bound of every example, in nats (`elbo_terms`):

        ELBO(x) = mean_k log p(x | z_k) - KL(q(z|x) || N(0, I)),
        z_k = mu + sigma * eps_k, k = 1..samples,

    so that fixed, learned and per-pixel sigma are comparable (Berger &
    Sebag 2020, Table 2), and, when samples > 1, the importance-weighted
    bound on the same draws (Burda et al. 2016):

        IWAE_K(x) = log mean_k p(x | z_k) N(z_k; 0, I) / q(z_k | x).

    Args:
        model: a `kvae.VAE`.
        examples: array (N, *data_shape), uint8 images or float data.
        samples: int >= 1, the draws of z per example.
        seed: int; batch b draws its eps (samples x (B, K), in order) from
            the NumPy generator of `seeds.reconstruction_batch_seed(seed, b)`.

    Returns:
        dict of float64 arrays of shape (N,): elbo, log_likelihood (the
        mean over draws of log p(x|z_k)), kl, and iwae when samples > 1.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1. Received: samples={samples}")
    parts = {"elbo": [], "log_likelihood": [], "kl": [], "iwae": []}
    for index, batch in enumerate(batches(examples, batch_size)):
        rng = seeds.generator(seeds.reconstruction_batch_seed(seed, index))
        draws = [
            elbo_terms(model, batch, seeds.standard_normal(rng, (len(batch), model.latent_dim)))
            for _ in range(samples)
        ]
        log_likelihood = np.mean([draw["log_likelihood"] for draw in draws], axis=0)
        kl = draws[0]["kl"]
        parts["log_likelihood"].append(log_likelihood)
        parts["kl"].append(kl)
        parts["elbo"].append(log_likelihood - kl)
        if samples > 1:
            parts["iwae"].append(log_mean_exp([draw["log_weight"] for draw in draws], axis=0))
    return {key: np.concatenate(values) for key, values in parts.items() if values}


def squared_error(examples, reconstructions):
    """The mean squared error of each example, float64 (N,)."""
    examples = as_float(examples).astype(np.float64)
    reconstructions = np.asarray(reconstructions, np.float64)
    return np.mean(np.square(examples - reconstructions).reshape(len(examples), -1), axis=1)


def reconstruction_gain(model, examples, mu, batch_size=256):
    """The reconstruction gain of each latent (Asperti 2019, Sec. 5): the
    MSE of the reconstructions from mu with latent j set to 0, minus the MSE
    of the reconstructions from mu. An inactive latent gains about 0.

    Args:
        model: a `kvae.VAE`.
        examples: array (N, *data_shape).
        mu: the posterior means of `examples`, (N, K).

    Returns:
        float64 array of shape (K,).
    """

    def mse_from(latents):
        decoded = [
            model.generate_from(latents[start : start + batch_size])
            for start in range(0, len(latents), batch_size)
        ]
        return float(np.mean(squared_error(examples, np.concatenate(decoded))))

    mu = np.asarray(mu, np.float32)
    baseline = mse_from(mu)
    gains = np.zeros(mu.shape[1])
    for latent in range(mu.shape[1]):
        zeroed = mu.copy()
        zeroed[:, latent] = 0.0
        gains[latent] = mse_from(zeroed) - baseline
    return gains
