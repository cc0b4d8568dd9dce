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
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

SETTINGS = {"mse": "F-VAE, MSE (sigma^2 = 1/2)", "learned": "LS-VAE, learned gamma",
            "pixel": "LV-VAE, per-pixel sigma", "computed": "computed gamma"}
SEEDED = ("computed", "learned")


def train_command(gamma, seed, args, run_dir):
    if (run_dir / "config.json").is_file():
        return [sys.executable, "-m", "kvae.train", "--resume", "--out", str(run_dir)]
    return [sys.executable, "-m", "kvae.train", "fashion_mnist", "--gamma", gamma,
            "--epochs", str(args.epochs), "--epochs2", str(args.epochs),
            "--steps-per-epoch", str(args.steps), "--lr", "1e-3", "--lr2", "1e-3",
            "--xla", "on", "--seed", str(seed), "--out", str(run_dir)]


def run(command, log):
    print("$", " ".join(command), flush=True)
    with open(log, "a") as handle:
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT).returncode


def train_and_evaluate(gamma, seed, args):
    run_dir = args.out / f"{gamma}-seed{seed}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    code = run(train_command(gamma, seed, args, run_dir), args.out / f"{gamma}-seed{seed}.log")
    status = {0: "finished", 3: "stopped: non-finite loss"}.get(code, f"failed ({code})")
    evaluation = run_dir / "eval" / "metrics.json"
    if not evaluation.is_file() and (run_dir / "stage1.keras").is_file():
        run([sys.executable, "-m", "kvae.evaluate", str(run_dir), "--out",
             str(run_dir / "eval")], args.out / f"{gamma}-seed{seed}.log")
    result = json.loads(evaluation.read_text()) if evaluation.is_file() else None
    return {"gamma": gamma, "seed": seed, "status": status, "run_dir": run_dir,
            "metrics": result}


def row_values(metrics):
    fd = metrics.get("fd_fmnist", {})
    return {"bits/dim": metrics["bits_per_dim"], "ELBO (nats)": metrics["elbo_nats"],
            "MSE": metrics["mse"], "FD REC": fd.get("rec"), "FD GEN-1": fd.get("gen1"),
            "FD GEN-2": fd.get("gen2"), "variance law": metrics["variance_law"],
            "inactive": metrics["inactive_latents"],
            "gamma": metrics["model"]["gamma"]}


def fmt(value):
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def part3_table(results):
    columns = list(row_values(results[0]["metrics"]).keys()) if results[0]["metrics"] else []
    lines = ["| setting | " + " | ".join(columns) + " | status |",
             "|---" * (len(columns) + 2) + "|"]
    for result in results:
        values = row_values(result["metrics"]) if result["metrics"] else {}
        lines.append(f"| {SETTINGS[result['gamma']]} | "
                     + " | ".join(fmt(values.get(c)) for c in columns)
                     + f" | {result['status']} |")
    return "\n".join(lines)


def part4_table(results):
    columns = ("MSE", "FD REC", "FD GEN-1", "FD GEN-2", "variance law", "inactive", "gamma")
    lines = ["| gamma | runs | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for gamma in SEEDED:
        rows = [row_values(r["metrics"]) for r in results
                if r["gamma"] == gamma and r["metrics"] is not None]
        cells = []
        for column in columns:
            values = np.array([row[column] for row in rows if row[column] is not None], float)
            cells.append(f"{values.mean():.4g} ± {values.std(ddof=1):.2g}" if len(values) > 1
                         else fmt(values[0]) if len(values) else "")
        lines.append(f"| {gamma} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(results, path):
    """gamma and validation MSE per epoch of stage 1, one line per run."""
    from kvae import images

    series_gamma, series_mse = {}, {}
    for result in results:
        metrics_csv = result["run_dir"] / "metrics.csv"
        if result["gamma"] not in SEEDED or not metrics_csv.is_file():
            continue
        with open(metrics_csv, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["stage"] == "1"]
        label = f"{result['gamma']} seed {result['seed']}"
        epochs = [int(row["epoch"]) for row in rows]
        series_gamma[label] = (epochs, [float(row["gamma"]) for row in rows])
        series_mse[label] = (epochs, [float(row["val_mse"]) for row in rows])
    images.save_line_plot(series_gamma, path.with_name(path.stem + "_gamma.png"),
                          title="stage-1 gamma (epoch mean) per epoch", log_y=True)
    images.save_line_plot(series_mse, path.with_name(path.stem + "_mse.png"),
                          title="stage-1 validation MSE per epoch", log_y=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/fashion_mnist"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/fashion_mnist"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    plan = [(gamma, args.seeds[0]) for gamma in args.settings]
    plan += [(gamma, seed) for seed in args.seeds[1:] for gamma in SEEDED
             if gamma in args.settings]
    results = [train_and_evaluate(gamma, seed, args) for gamma, seed in plan]
    first = [r for r in results if r["seed"] == args.seeds[0]]
    print("\n## Part 3 (seed %d)\n" % args.seeds[0])
    print(part3_table(first))
    print("\n## Part 4 (mean ± std over seeds)\n")
    print(part4_table(results))
    args.figures.mkdir(parents=True, exist_ok=True)
    for result in first:
        for picture in ("reconstructions", "samples_mean", "samples_ancestral",
                        "samples_stage2", "latent_variance"):
            source = result["run_dir"] / "eval" / f"{picture}.png"
            if source.is_file():
                shutil.copy(source, args.figures / f"{result['gamma']}_{picture}.png")
    curves(results, args.figures / "curves.png")
    print(f"\nfigures in {args.figures}")


if __name__ == "__main__":
    main()
