"""Paths through a latent space, for looking at what a model learned:
interpolations between two latents and traversals of single latents.
Pure NumPy on float32 latents; the images come from decoding the returned
latents (`TwoStageVAE.generate_from`, or the service's /interpolate and
/traverse)."""

import numpy as np

PATHS = ("linear", "spherical")
"""How an interpolation goes from one latent to the other."""


def interpolate(start, end, steps, path="linear"):
    """`steps` latents from `start` to `end` (both included), float32
    (steps, K).

    linear: (1 - t) start + t end. spherical: the great-circle path of
    Shoemake (1985), slerp(t) = sin((1 - t) w) / sin(w) start + sin(t w) /
    sin(w) end with cos(w) = <start, end> / (|start| |end|), which keeps a
    Gaussian prior draw's typical norm along the way where the straight line
    passes near the origin (White 2016, "Sampling generative networks");
    it falls back to linear when the two are (anti)parallel or zero.

    Args:
        start, end: (K,) latents.
        steps: the number of latents, >= 2.
        path: one of PATHS.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}. Received: path={path!r}")
    if int(steps) < 2:
        raise ValueError(f"steps must be at least 2. Received: steps={steps!r}")
    start, end = (np.asarray(v, np.float64) for v in (start, end))
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    linear = (1 - t) * start + t * end
    norms = np.linalg.norm(start) * np.linalg.norm(end)
    if path == "linear" or norms == 0:
        return linear.astype(np.float32)
    omega = np.arccos(np.clip(start @ end / norms, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return linear.astype(np.float32)
    spherical = (np.sin((1 - t) * omega) * start + np.sin(t * omega) * end) / np.sin(omega)
    return spherical.astype(np.float32)


def traverse(point, indices, steps, span=3.0):
    """Traversals of single latents around `point`: for each index i in
    `indices`, `steps` copies of `point` whose i-th latent runs evenly from
    point[i] - span to point[i] + span (the rows of a traversal grid, as in
    Higgins et al. 2017, beta-VAE, Fig. 7), float32 (len(indices) * steps,
    K), row by row."""
    point = np.asarray(point, np.float32)
    offsets = np.linspace(-span, span, int(steps), dtype=np.float32)
    rows = np.repeat(point[None], len(indices) * int(steps), axis=0)
    for row, index in enumerate(indices):
        rows[row * int(steps) : (row + 1) * int(steps), index] += offsets
    return rows
