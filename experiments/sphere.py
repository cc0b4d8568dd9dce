"""Issue 5, part 2: Berger & Sebag's Theorem 1 on the hypersphere.

    python experiments/sphere.py --out experiments/runs/sphere [--dims 2 8 32]

Data uniform on S_{D-1}(R), R = 1, fresh points every batch. For each D, an
F-VAE (fixed sigma) with the residual MLP (4 blocks of 200 units) and D
latents is trained at sigma = ratio * R / sqrt(D - 1) for each --ratios
value. The theorem says the decoder means collapse to the centre (radius 0)
when sigma >= R / sqrt(D - 1), i.e. ratio >= 1. For each run we measure the
radius of the decoder means of 10,000 prior draws (mean and std of ||mu(z)||)
and plot it against sigma / R, one picture per D, with the threshold drawn
as a vertical line.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

from common import beside, markdown_table, train

RATIOS = (0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6, 2.0)


def decoder_mean_radius(run_dir, draws=10000, seed=0):
    """Mean and std of ||mu(z)|| for z ~ N(0, I) under the run's stage 1."""
    from keras import ops

    import kvae

    model = kvae.load(Path(run_dir) / "stage1.keras", compile=False)
    means = ops.convert_to_numpy(model.generate(draws, mode="mean", seed=seed))
    radius = np.linalg.norm(means, axis=1)
    return float(radius.mean()), float(radius.std())


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/sphere"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/sphere"))
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--ratios", type=float, nargs="+", default=list(RATIOS))
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, curves = [], {}
    for dim in args.dims:
        threshold = 1.0 / math.sqrt(dim - 1)
        xs, ys = [], []
        for ratio in args.ratios:
            sigma = ratio * threshold
            run_dir = args.out / f"d{dim}-ratio{ratio:g}"
            status = train(
                run_dir,
                [
                    "sphere",
                    "--dim",
                    dim,
                    "--radius",
                    1.0,
                    "--latent-dim",
                    dim,
                    "--gamma",
                    "fixed",
                    "--sigma",
                    f"{sigma:.6g}",
                    "--stage",
                    "1",
                    "--epochs",
                    args.epochs,
                    "--seed",
                    args.seed,
                ],
                beside(run_dir, ".log"),
            )
            if not (run_dir / "stage1.keras").is_file():
                rows.append([dim, f"{sigma:.4g}", f"{ratio:g}", "", "", status])
                continue
            radius_file = run_dir / "radius.json"
            if not radius_file.is_file():
                mean, std = decoder_mean_radius(run_dir)
                radius_file.write_text(json.dumps({"mean": mean, "std": std}))
            radius = json.loads(radius_file.read_text())
            rows.append(
                [
                    dim,
                    f"{sigma:.4g}",
                    f"{ratio:g}",
                    f"{radius['mean']:.4f}",
                    f"{radius['std']:.4f}",
                    status,
                ]
            )
            xs.append(sigma)
            ys.append(radius["mean"])
        curves[dim] = {
            f"mean radius of mu(z), D = {dim}": (xs, ys),
            f"threshold R / sqrt(D - 1) = {threshold:.3g}": ([threshold] * 2, [0.0, 1.0]),
        }
    print(
        markdown_table(
            ["D", "sigma / R", "sigma sqrt(D-1) / R", "mean radius of mu(z)", "std", "status"], rows
        )
    )
    from kvae import images

    for dim, series in curves.items():
        images.save_line_plot(
            series,
            args.figures / f"radius_d{dim}.png",
            title=f"D = {dim}: radius of the decoder means vs sigma / R",
        )
    print(f"figures in {args.figures}")


if __name__ == "__main__":
    main()
