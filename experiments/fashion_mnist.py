"""Issue 5, parts 3 and 4: Fashion-MNIST with the four observation models,
and computed against learned gamma over seeds.

    python experiments/fashion_mnist.py --out experiments/runs/fashion_mnist

Part 3 trains F-VAE with MSE (sigma^2 = 1/2), LS-VAE (learned gamma), LV-VAE
(per-pixel sigma) and the computed gamma with the same network (Dai & Wipf's
28x28 InfoGAN-like net, 64 latents), schedule and seed, both stages. Part 4
adds seeds for the computed and the learned gamma. Every run is
`python -m kvae.train` then `python -m kvae.evaluate` on the 10,000 test
images; a run folder that exists is resumed, an evaluation that exists is
kept. The tables are printed in Markdown, the pictures copied to --figures.

The schedule is sized for a 2-core CPU (the recipe's 400 epochs at lr 1e-4
are not): --epochs epochs of --steps batches of 64 for each stage, lr 1e-3
constant.

LV-VAE runs with a floor on its per-pixel sigma (--pixel-min-sigma, default
0.004, about the 1/255 quantisation step): without it the likelihood of the
exactly-black background pixels is unbounded and the first attempt went NaN
after one epoch (docs/results.md, part 3).
"""

import argparse
import shutil
from pathlib import Path

from common import evaluate, markdown_table, mean_std, metrics_rows, train

SETTINGS = {
    "mse": "F-VAE, MSE (sigma^2 = 1/2)",
    "learned": "LS-VAE, learned gamma",
    "pixel": "LV-VAE, per-pixel sigma",
    "computed": "computed gamma",
    "pixel-warmup": "LV-VAE, sigma warm-up (floored at 0.004)",
    "pixel-warmup-nofloor": "LV-VAE, sigma warm-up, no floor",
}
"""Setting name -> table label. The pixel-warmup settings (issue 17) are
the LV-VAE with `--sigma-warmup` (--pixel-warmup steps), with and without
the floor; not in the default list."""
DEFAULT_SETTINGS = ("mse", "learned", "pixel", "computed")
SEEDED = ("computed", "learned")


def setting_options(setting, args):
    """kvae.train options of a setting (its name up to '-' is the gamma)."""
    options = ["--gamma", setting.split("-")[0]]
    if setting in ("pixel", "pixel-warmup"):
        options += ["--min-sigma", args.pixel_min_sigma]
    if "warmup" in setting:
        options += ["--sigma-warmup", args.pixel_warmup]
    return options


def train_and_evaluate(gamma, seed, args):
    run_dir = args.out / f"{gamma}-seed{seed}"
    log = args.out / f"{gamma}-seed{seed}.log"
    status = train(
        run_dir,
        [
            "fashion_mnist",
            *setting_options(gamma, args),
            "--epochs",
            args.epochs,
            "--epochs2",
            args.epochs,
            "--steps-per-epoch",
            args.steps,
            "--lr",
            "1e-3",
            "--lr2",
            "1e-3",
            "--xla",
            "on",
            "--seed",
            seed,
        ],
        log,
    )
    return {
        "gamma": gamma,
        "seed": seed,
        "status": status,
        "run_dir": run_dir,
        "metrics": evaluate(run_dir, [], log),
    }


def row_values(metrics):
    fd = metrics.get("fd_fmnist", {})
    return {
        "bits/dim": metrics["bits_per_dim"],
        "ELBO (nats)": metrics["elbo_nats"],
        "MSE": metrics["mse"],
        "FD REC": fd.get("rec"),
        "FD GEN-1": fd.get("gen1"),
        "FD GEN-2": fd.get("gen2"),
        "variance law": metrics["variance_law"],
        "inactive": metrics["inactive_latents"],
        "gamma": metrics["model"]["gamma"],
    }


def fmt(value):
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def part3_table(results):
    columns = [
        "bits/dim",
        "ELBO (nats)",
        "MSE",
        "FD REC",
        "FD GEN-1",
        "FD GEN-2",
        "variance law",
        "inactive",
        "gamma",
    ]
    rows = []
    for result in results:
        values = row_values(result["metrics"]) if result["metrics"] else {}
        rows.append(
            [SETTINGS[result["gamma"]], *(fmt(values.get(c)) for c in columns), result["status"]]
        )
    return markdown_table(["setting", *columns, "status"], rows)


def part4_table(results):
    columns = ["MSE", "FD REC", "FD GEN-1", "FD GEN-2", "variance law", "inactive", "gamma"]
    rows = []
    for gamma in SEEDED:
        values = [
            row_values(r["metrics"])
            for r in results
            if r["gamma"] == gamma and r["metrics"] is not None
        ]
        rows.append([gamma, len(values), *(mean_std([v[c] for v in values]) for c in columns)])
    return markdown_table(["gamma", "runs", *columns], rows)


def curves(results, path):
    """gamma and validation MSE per epoch of stage 1, one line per run."""
    from kvae import images

    series_gamma, series_mse = {}, {}
    for result in results:
        if result["gamma"] not in SEEDED or not (result["run_dir"] / "metrics.csv").is_file():
            continue
        rows = metrics_rows(result["run_dir"])
        label = f"{result['gamma']} seed {result['seed']}"
        epochs = [int(row["epoch"]) for row in rows]
        series_gamma[label] = (epochs, [float(row["gamma"]) for row in rows])
        validated = [row for row in rows if row["val_mse"]]  # none between --validate-every
        series_mse[label] = (
            [int(row["epoch"]) for row in validated],
            [float(row["val_mse"]) for row in validated],
        )
    images.save_line_plot(
        series_gamma,
        path.with_name(path.stem + "_gamma.png"),
        title="stage-1 gamma (epoch mean) per epoch",
        log_y=True,
    )
    images.save_line_plot(
        series_mse,
        path.with_name(path.stem + "_mse.png"),
        title="stage-1 validation MSE per epoch",
        log_y=True,
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/fashion_mnist"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/fashion_mnist"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--pixel-min-sigma",
        type=float,
        default=0.004,
        help="the LV-VAE's sigma floor (kvae.train --min-sigma)",
    )
    parser.add_argument(
        "--pixel-warmup",
        type=int,
        default=800,
        help="steps of the sigma warm-up of the pixel-warmup settings (kvae.train --sigma-warmup)",
    )
    parser.add_argument(
        "--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=list(SETTINGS)
    )
    args = parser.parse_args()
    plan = [(gamma, args.seeds[0]) for gamma in args.settings]
    plan += [(gamma, seed) for seed in args.seeds[1:] for gamma in SEEDED if gamma in args.settings]
    results = [train_and_evaluate(gamma, seed, args) for gamma, seed in plan]
    first = [r for r in results if r["seed"] == args.seeds[0]]
    print(f"\n## Part 3 (seed {args.seeds[0]})\n")
    print(part3_table(first))
    print("\n## Part 4 (mean ± std over seeds)\n")
    print(part4_table(results))
    args.figures.mkdir(parents=True, exist_ok=True)
    for result in first:
        for picture in (
            "reconstructions",
            "samples_mean",
            "samples_ancestral",
            "samples_stage2",
            "latent_variance",
        ):
            source = result["run_dir"] / "eval" / f"{picture}.png"
            if source.is_file():
                shutil.copy(source, args.figures / f"{result['gamma']}_{picture}.png")
    curves(results, args.figures / "curves.png")
    print(f"\nfigures in {args.figures}")


if __name__ == "__main__":
    main()
