"""The pictures of an evaluation: reconstructions, GEN-1 and GEN-2 grids,
ancestral samples, and the posterior variance of each latent (scatter plots
for 2-D data)."""

from pathlib import Path

import numpy as np

from kvae import images, seeds
from kvae.losses import INACTIVE_THRESHOLD

PICTURE_COLUMNS = 10


def draw(context, out):
    """Draw the evaluation's pictures into `out`; returns {name: file name}."""
    law, inactive = context.law, context.inactive
    return draw_pictures(
        out,
        context.stage1,
        context.real_float,
        context.reconstructions,
        context.generated,
        law["mean_sigma2"],
        inactive,
        context.options.seed,
    )


def draw_pictures(out, stage1, real, reconstructions, generated, mean_sigma2, inactive, seed):
    """The PNGs of an evaluation; returns {name: file name}."""
    out = Path(out)
    vectors = len(stage1.data_shape) == 1
    pictures = {}
    columns = PICTURE_COLUMNS
    z = stage1.sample_prior(columns if not vectors else 500, seed=seed)
    means = stage1.generate_from(z, mode="mean")
    draws = [
        stage1.generate_from(z, mode="sample", seed=seeds.picture_row_seed(seed, row))
        for row in range(1 if vectors else 3)
    ]
    if vectors:
        shown = real[:500]
        images.save_scatter(
            {"data": shown, "reconstruction": reconstructions[:500]}, out / "reconstructions.png"
        )
        images.save_scatter(
            {"data": shown, "sample": draws[0], "mean": means}, out / "samples_ancestral.png"
        )
        images.save_scatter(
            {"data": shown, "mean": generated["gen1"][:500]}, out / "samples_mean.png"
        )
        if "gen2" in generated:
            images.save_scatter(
                {"data": shown, "mean": generated["gen2"][:500]}, out / "samples_stage2.png"
            )
    else:
        pairs = []
        for row in range(5):
            window = slice(row * columns, (row + 1) * columns)
            pairs += [real[window], reconstructions[window]]
        images.save_grid(np.concatenate(pairs), out / "reconstructions.png", columns, scale=2)
        images.save_grid(generated["gen1"][:100], out / "samples_mean.png", columns, scale=2)
        images.save_grid(
            np.concatenate([means, *draws]), out / "samples_ancestral.png", columns, scale=2
        )
        if "gen2" in generated:
            images.save_grid(generated["gen2"][:100], out / "samples_stage2.png", columns, scale=2)
    images.save_bar_plot(
        mean_sigma2,
        out / "latent_variance.png",
        highlighted=np.flatnonzero(inactive),
        threshold=INACTIVE_THRESHOLD,
        x_label="latent",
        y_label="mean sigma^2 over the test examples",
        title=f"mean posterior variance per latent (0..{len(mean_sigma2) - 1})\n"
        f"red: inactive (>= {INACTIVE_THRESHOLD}), {int(inactive.sum())} of "
        f"{len(inactive)}; line: {INACTIVE_THRESHOLD}; top: "
        f"{max(1.0, float(np.max(mean_sigma2))):.2f}",
    )
    for name in (
        "reconstructions",
        "samples_mean",
        "samples_ancestral",
        "samples_stage2",
        "latent_variance",
    ):
        if (out / f"{name}.png").is_file():
            pictures[name] = f"{name}.png"
    return pictures
