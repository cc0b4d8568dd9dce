"""The picture a run draws at the end of every epoch (samples/)."""

import numpy as np
from keras import ops

from kvae import images
from kvae.two_stage import TwoStageVAE


def stage1_pictures(dataset, seed):
    """The per-epoch picture of stage 1: validation originals, their
    reconstructions and mean samples (images), or a scatter of the data,
    reconstructions and samples (vectors)."""
    vectors = len(dataset.shape) == 1
    originals = dataset.examples(500 if vectors else 10)

    def draw(model, path):
        reconstructions = ops.convert_to_numpy(model.reconstruct(originals))
        samples = ops.convert_to_numpy(model.generate(len(originals), mode="mean", seed=seed))
        if vectors:
            images.save_scatter(
                {"data": originals, "reconstruction": reconstructions, "sample": samples}, path
            )
        else:
            images.save_grid(
                np.concatenate([originals, reconstructions, samples]),
                path,
                columns=len(originals),
                scale=2,
            )

    return draw


def stage2_pictures(stage1, dataset, seed):
    """The per-epoch picture of stage 2: two-stage mean samples."""
    vectors = len(dataset.shape) == 1

    def draw(model, path):
        samples = TwoStageVAE(stage1, model).generate(500 if vectors else 20, seed=seed)
        if vectors:
            images.save_scatter({"data": dataset.examples(500), "sample": samples}, path)
        else:
            images.save_grid(samples, path, columns=10, scale=2)

    return draw
