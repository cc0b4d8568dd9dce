"""Issue 5, part 1: Berger & Sebag's Table 1 on the 2-D manifold.

    python experiments/manifold2d.py --out experiments/runs/manifold2d [--seeds 0 1 2 3 4]

Residual MLP encoder and decoder (4 blocks of 200 units), 100 fresh points per
batch, stage 1 only, for each seed:
- F-VAE with sigma in {1, 0.3, 0.1, 0.043, 0.03, 0.01};
- LS-VAE (learned sigma, starting at 1) and LV-VAE (per-dimension sigma);
- F*-VAE: sigma fixed at the final sigma of the same seed's LS-VAE;
- F-VAE along the same seed's LS-VAE sigma trajectory (appendix A.2), one
  sigma per epoch (--sigma-schedule with the LS-VAE run's metrics.csv).
Each run is evaluated with `python -m kvae.evaluate` (ELBO over 10,000 fresh
test points, KL weight 1, gamma terms included, so the settings compare).
Prints the table (mean ± std over seeds) and draws the LS-VAE sigma curves.
"""

import argparse
from pathlib import Path

from common import beside, evaluate, markdown_table, mean_std, metrics_rows, train

FIXED_SIGMAS = (1.0, 0.3, 0.1, 0.043, 0.03, 0.01)


def settings(seed, out):
    """(name, options) of every setting of one seed, LS-VAE first (the last
    two depend on it)."""
    learned = out / f"ls-seed{seed}"
    yield "LS-VAE", ["--gamma", "learned"], learned
    yield "LV-VAE", ["--gamma", "pixel"], out / f"lv-seed{seed}"
    for sigma in FIXED_SIGMAS:
        yield (
            f"F-VAE sigma={sigma:g}",
            ["--gamma", "fixed", "--sigma", sigma],
            out / f"f{sigma:g}-seed{seed}",
        )
    final_sigma = float(metrics_rows(learned)[-1]["gamma"])
    yield (
        "F*-VAE (LS-VAE's final sigma)",
        ["--gamma", "fixed", "--sigma", final_sigma],
        out / f"fstar-seed{seed}",
    )
    yield (
        "F-VAE along LS-VAE's sigma",
        ["--gamma", "fixed", "--sigma-schedule", learned / "metrics.csv"],
        out / f"fschedule-seed{seed}",
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/manifold2d"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/manifold2d"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    results = {}
    for seed in args.seeds:
        for name, options, run_dir in settings(seed, args.out):
            log = beside(run_dir, ".log")
            status = train(
                run_dir,
                ["manifold2d", *options, "--stage", "1", "--epochs", args.epochs, "--seed", seed],
                log,
            )
            metrics = evaluate(run_dir, ["--fid", "off"], log)
            results.setdefault(name, []).append(
                {"seed": seed, "status": status, "run_dir": run_dir, "metrics": metrics}
            )
    rows = []
    for name, runs in results.items():
        done = [run["metrics"] for run in runs if run["metrics"] is not None]
        sigmas = [m["model"]["gamma"] for m in done]
        problems = sorted({run["status"] for run in runs} - {"finished"})
        rows.append(
            [
                name,
                mean_std(sigmas) if sigmas[0] is not None else "per dimension",
                mean_std([m["elbo_nats"] for m in done]),
                len(done),
                "; ".join(problems),
            ]
        )
    print(markdown_table(["setting", "final sigma", "ELBO (nats)", "runs", "problems"], rows))
    import shutil

    from kvae import images

    args.figures.mkdir(parents=True, exist_ok=True)
    for runs in results.values():  # Fig. 4 style: the first seed of each setting
        slug = runs[0]["run_dir"].name.rsplit("-seed", 1)[0]
        for picture in ("reconstructions", "samples_ancestral"):
            source = runs[0]["run_dir"] / "eval" / f"{picture}.png"
            if source.is_file():
                shutil.copy(source, args.figures / f"{slug}_{picture}.png")
    curves = {
        f"seed {run['seed']}": (
            [int(row["epoch"]) for row in metrics_rows(run["run_dir"])],
            [float(row["gamma"]) for row in metrics_rows(run["run_dir"])],
        )
        for run in results["LS-VAE"]
    }
    images.save_line_plot(
        curves,
        args.figures / "ls_vae_sigma.png",
        log_y=True,
        title="LS-VAE: learned sigma (epoch mean) per epoch",
    )
    print(f"figures in {args.figures}")


if __name__ == "__main__":
    main()
