"""Synthetic data of Berger & Sebag 2020: the 2-D manifold and the
hypersphere. Training draws fresh points for every batch (`sampler`); a
split is a seeded sample."""

import numpy as np

MANIFOLD2D_REGIONS = (
    (-1.0, -1.0 / 3.0, 0.03),
    (-1.0 / 3.0, 1.0 / 3.0, 0.005),
    (1.0 / 3.0, 1.0, 0.1),
)
"""(start, end, noise std) of the three regions of `manifold2d` along the
curve parameter t: moderate, small and large noise."""


def sample_manifold2d(rng, n):
    """n points of the 2-D problem of Berger & Sebag 2020, Sec. 4.1 (Fig. 3):
    a 1-D manifold in R^2 with three regions of moderate, small and large
    noise. The paper gives it only as a figure; our construction: t ~ U(-1, 1)
    on the curve (t, 0.6 sin(pi t)), plus isotropic Gaussian noise whose std
    is set by the region of t (MANIFOLD2D_REGIONS)."""
    t = rng.uniform(-1.0, 1.0, size=n)
    points = np.stack([t, 0.6 * np.sin(np.pi * t)], axis=1)
    noise_std = np.zeros(n)
    for start, end, std in MANIFOLD2D_REGIONS:
        noise_std[(t >= start) & (t <= end)] = std
    points += rng.normal(size=(n, 2)) * noise_std[:, None]
    return points.astype(np.float32)


def manifold2d_log_density(points, regions=MANIFOLD2D_REGIONS, grid=8001, chunk=256):
    """log p(x) under the exact generative model of `manifold2d`, in nats:

        p(x) = integral over t in [-1, 1] of 1/2 N(x; c(t), s(t)^2 I_2) dt,
        c(t) = (t, 0.6 sin(pi t)),

    s(t) the noise std of t's region (`regions`, as `sample_manifold2d`).
    Each region is integrated on its own grid of `grid` points of t by the
    trapezoid rule (so that the jumps of s fall on grid ends), in log space.
    E_data[log p(x)] bounds the expected ELBO of every model of this data
    (Gibbs' inequality and ELBO <= log-likelihood).

    Args:
        points: array (N, 2).

    Returns:
        float64 array (N,).
    """
    points = np.asarray(points, np.float64)
    log_terms_t, centres, stds = [], [], []
    for start, end, std in regions:
        t = np.linspace(start, end, grid)
        weights = np.full(grid, (end - start) / (grid - 1))
        weights[[0, -1]] /= 2.0
        log_terms_t.append(np.log(weights) + np.log(0.5) - np.log(2.0 * np.pi * std**2))
        centres.append(np.stack([t, 0.6 * np.sin(np.pi * t)], axis=1))
        stds.append(np.full(grid, std))
    log_terms_t = np.concatenate(log_terms_t)
    centres, variances = np.concatenate(centres), np.concatenate(stds) ** 2
    result = np.empty(len(points))
    for begin in range(0, len(points), chunk):
        batch = points[begin : begin + chunk]
        squared = ((batch[:, None, :] - centres[None]) ** 2).sum(-1)
        log_terms = log_terms_t[None] - squared / (2.0 * variances[None])
        peak = log_terms.max(axis=1, keepdims=True)
        result[begin : begin + chunk] = peak[:, 0] + np.log(np.exp(log_terms - peak).sum(axis=1))
    return result


def sample_sphere(rng, n, dim, radius):
    """n points uniform on the hypersphere S_{dim-1}(radius) in R^dim (the
    data of Berger & Sebag's Theorem 1): radius * g / |g|, g ~ N(0, I)."""
    directions = rng.normal(size=(n, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return (radius * directions).astype(np.float32)


SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 3}
"""The NumPy stream of each split's sample: rng([seed, stream])."""


def sampler(name, dim=8, radius=1.0):
    """The function (rng, n) -> n points of a synthetic dataset."""
    if name == "manifold2d":
        return sample_manifold2d
    return lambda rng, n: sample_sphere(rng, n, dim, radius)


def load_split(name, split, seed=0, count=10000, dim=8, radius=1.0):
    """A seeded sample of `count` points for one split."""
    return sampler(name, dim, radius)(np.random.default_rng([seed, SPLIT_STREAMS[split]]), count)
