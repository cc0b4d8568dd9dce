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
