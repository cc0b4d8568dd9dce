"""Issue 5, part 5: variable collapse (Asperti 2019) on Fashion-MNIST.

    python experiments/collapse.py --out experiments/runs/collapse

Trains the paper's dense VAE (784-256-64-32-16, `collapse_dense`) and its
convolutional VAE (Fig. 4, `collapse_conv`) with 16 latents, batches of 128
(the paper's Fig. 2), stage 1 only, and evaluates them. Prints, per network,
the per-latent table of the paper's Table 1 (variance of mu, mean sigma^2)
with the inactive flag and the reconstruction gain, and draws Fig. 3:
generation from z ~ N(0, I) (upper row) beside the same z with the inactive
latents set to 0 (lower row).

The paper does not give its loss; kvae trains with --gamma (default
computed, the same author's balancing rule; `mse` is the plain summed squared
error), and the table says which.
"""

import argparse
from pathlib import Path

import numpy as np

from common import beside, evaluate, markdown_table, train

NETWORKS = ("collapse_dense", "collapse_conv")


def zeroed_generation(run_dir, inactive, path, count=10, seed=0):
    """Fig. 3: decoder means of z ~ N(0, I), and of the same z with the
    inactive latents set to 0; returns the MSE between the two rows."""
    from keras import ops

    import kvae
    from kvae import images

    model = kvae.load(Path(run_dir) / "stage1.keras", compile=False)
    z = ops.convert_to_numpy(model.sample_prior(count, seed=seed))
    zeroed = z.copy()
    zeroed[:, inactive] = 0.0
    upper = ops.convert_to_numpy(model.generate_from(z))
    lower = ops.convert_to_numpy(model.generate_from(zeroed))
    images.save_grid(np.concatenate([upper, lower]), path, columns=count, scale=2)
    return float(np.mean((upper - lower) ** 2))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/collapse"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/collapse"))
    parser.add_argument("--gamma", default="computed")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for net in NETWORKS:
        run_dir = args.out / f"{net}-{args.gamma}"
        log = beside(run_dir, ".log")
        status = train(
            run_dir,
            [
                "fashion_mnist",
                "--net",
                net,
                "--latent-dim",
                16,
                "--gamma",
                args.gamma,
                "--batch-size",
                128,
                "--lr",
                "1e-3",
                "--epochs",
                args.epochs,
                "--stage",
                "1",
                "--seed",
                args.seed,
            ],
            log,
        )
        metrics = evaluate(run_dir, ["--fid", "off"], log)
        print(f"\n## {net}, --gamma {args.gamma}: {status}\n")
        if metrics is None:
            continue
        rows = [
            [
                row["index"],
                f"{row['var_mu']:.4g}",
                f"{row['mean_sigma2']:.4g}",
                "inactive" if row["inactive"] else "",
                f"{row['reconstruction_gain']:.3g}",
            ]
            for row in metrics["latents"]
        ]
        print(
            markdown_table(["latent", "Var(mu)", "mean sigma^2", "", "reconstruction gain"], rows)
        )
        inactive = [row["index"] for row in metrics["latents"] if row["inactive"]]
        difference = zeroed_generation(
            run_dir, inactive, args.figures / f"{net}_{args.gamma}_zeroed_inactive.png"
        )
        print(
            f"\ninactive {len(inactive)} of 16; MSE {metrics['mse']:.4g}; variance law "
            f"{metrics['variance_law']:.3f}; FD-fmnist REC / GEN-1 "
            f"{metrics['fd_fmnist']['rec']:.2f} / {metrics['fd_fmnist']['gen1']:.2f}; "
            f"zeroing the inactive latents changes the generated means by MSE "
            f"{difference:.3g}"
        )
    print(f"figures in {args.figures}")


if __name__ == "__main__":
    main()
