"""Issue 17: why the learned sigmas fail on the 2-D manifold, and what helps.

    python experiments/lv_remedies.py --out experiments/runs/lv [--seeds 0 ... 9] [--jobs 2]

The manifold2d recipe (stage 1 only, 100 epochs of 100 fresh batches), for
each seed, in these settings:
- LS-VAE: a learned scalar sigma (`--gamma learned`);
- LV-VAE: a per-dimension sigma(z) from the decoder (`--gamma pixel`);
- LV-VAE with a sigma warm-up: one shared sigma for the first 2,000 steps,
  handed over to sigma(z) over the next 2,000 (`--sigma-warmup 2000`);
- the recipe as a user runs it, `--gamma pixel` with no other option (the
  warm-up since issue 17), for the acceptance runs on fresh seeds.
The LV-VAE without a warm-up passes `--sigma-warmup 0`. The beta-NLL rows of
docs/results.md came from this script at commit 29397a2, when kvae had a
`--beta-nll` option (removed since: it helped nowhere).
Each run is evaluated with `python -m kvae.evaluate` (ELBO over 10,000
fresh test points, every constant included). A run is "collapsed" when no
latent is active, "one lost" when one of the two is inactive (mean posterior
variance >= 0.8). Prints the table (mean ± std over seeds) and copies seed 0's
pictures to --figures. --jobs runs that many trainings side by side.
"""

import argparse
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import beside, evaluate, markdown_table, mean_std, train

SETTINGS = {
    "LS-VAE (learned scalar sigma)": ("ls", ["--gamma", "learned"]),
    "LV-VAE (per-dimension sigma)": ("lv", ["--gamma", "pixel", "--sigma-warmup", "0"]),
    "LV-VAE, sigma warm-up 2000": ("lv-warm2000", ["--gamma", "pixel", "--sigma-warmup", "2000"]),
    "LV-VAE, the recipe (--gamma pixel)": ("lv-recipe", ["--gamma", "pixel"]),
}


def run_one(out, slug, options, seed, epochs):
    run_dir = out / f"{slug}-seed{seed}"
    log = beside(run_dir, ".log")
    status = train(
        run_dir,
        ["manifold2d", *options, "--stage", "1", "--epochs", epochs, "--seed", seed],
        log,
    )
    return run_dir, status, evaluate(run_dir, ["--fid", "off"], log)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/lv"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/lv_remedies"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--settings",
        nargs="+",
        default=[name for name, (slug, _) in SETTINGS.items() if slug != "lv-recipe"],
        choices=list(SETTINGS),
    )
    args = parser.parse_args()
    jobs = [(name, seed, SETTINGS[name]) for name in args.settings for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        done = list(
            pool.map(
                lambda job: (job[0], job[1], run_one(args.out, *job[2], job[1], args.epochs)),
                jobs,
            )
        )
    rows = []
    for name in args.settings:
        runs = [(seed, result) for setting, seed, result in done if setting == name]
        metrics = [result[2] for _, result in runs if result[2] is not None]
        active = [m["active_latents"] for m in metrics]
        rows.append(
            [
                name,
                mean_std([m["elbo_nats"] for m in metrics]),
                ", ".join(f"{m['elbo_nats']:.3f}" for m in metrics),
                sum(a == 0 for a in active),
                sum(a == 1 for a in active),
                mean_std([m["mse"] for m in metrics]),
                len(metrics),
                "; ".join(sorted({result[1] for _, result in runs} - {"finished"})),
            ]
        )
        first = min(runs, key=lambda item: item[0])[1][0]
        args.figures.mkdir(parents=True, exist_ok=True)
        for picture in ("reconstructions", "samples_ancestral"):
            source = first / "eval" / f"{picture}.png"
            if source.is_file():
                shutil.copy(source, args.figures / f"{SETTINGS[name][0]}_{picture}.png")
    print(
        markdown_table(
            [
                "setting",
                "ELBO (nats)",
                "per seed",
                "collapsed",
                "one latent lost",
                "MSE",
                "runs",
                "problems",
            ],
            rows,
        )
    )
    print(f"figures of seed {min(args.seeds)} in {args.figures}")


if __name__ == "__main__":
    main()
