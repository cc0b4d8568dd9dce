"""Reconstruction error: the MSE of reconstructions from a sampled z (the
originals' protocol) and from mu."""

import numpy as np

from kvae import metrics

CARD = {"mse": "MSE", "mse_from_mu": "MSE at mu"}
"""The numbers a zoo card repeats, with their column names."""


def run(context):
    """({"mse", "mse_from_mu"}, their words)."""
    from_mu = metrics.reconstruct(
        context.stage1, context.real, batch_size=context.options.batch_size
    )
    numbers = {
        "mse": float(np.mean(metrics.squared_error(context.real, context.reconstructions))),
        "mse_from_mu": float(np.mean(metrics.squared_error(context.real, from_mu))),
    }
    words = {
        "reconstruction": "decoder mean at z = mu + sigma * eps (sampled, as the originals); "
        "mse_from_mu uses z = mu",
        "mse": "mean over examples and dimensions of (x - reconstruction)^2, x in [0, 1], "
        "reconstructions not clipped",
    }
    return numbers, words
