"""Issue 18, item 4: does mixed_bfloat16 learn what float32 learns?

    python experiments/precision.py --out experiments/runs/precision [--seeds 0 1 2]

Fashion-MNIST, the recipe's network (Dai & Wipf's 28x28 net, 64 latents),
computed and learned gamma, stage 1 only: --epochs epochs of --steps batches
of 64 at lr 1e-3, in float32 and in mixed_bfloat16, for each seed. Every run
is evaluated by `python -m kvae.evaluate` on the 10,000 test images. Prints,
per gamma, the mean ± std over seeds of each precision and the mean of the
per-seed differences (bf16 - float32) beside the seed spread: the question
is whether the precision moves the results by more than the seed does.

bfloat16 rounds the same way on every device, so what a model learns in it
can be checked on a CPU; how much faster it is cannot (docs/performance.md).
"""

import argparse
from pathlib import Path

from common import evaluate, markdown_table, mean_std, train

PRECISIONS = ("float32", "mixed_bfloat16")
COLUMNS = ("elbo_nats", "mse", "variance_law", "inactive_latents")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/runs/precision"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--gammas", nargs="+", default=["computed", "learned"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    results = {}
    for gamma in args.gammas:
        for seed in args.seeds:
            for precision in PRECISIONS:
                run_dir = args.out / f"{gamma}-{precision}-seed{seed}"
                log = args.out / f"{gamma}-{precision}-seed{seed}.log"
                train(
                    run_dir,
                    [
                        "fashion_mnist",
                        "--gamma",
                        gamma,
                        "--stage",
                        "1",
                        "--epochs",
                        args.epochs,
                        "--steps-per-epoch",
                        args.steps,
                        "--lr",
                        "1e-3",
                        "--precision",
                        precision,
                        "--xla",
                        "on",
                        "--seed",
                        seed,
                    ],
                    log,
                )
                metrics = evaluate(run_dir, ["--fid", "off"], log)
                results[gamma, precision, seed] = metrics
    rows = []
    for gamma in args.gammas:
        for column in COLUMNS:
            values = {
                precision: [
                    float(results[gamma, precision, seed][column])
                    for seed in args.seeds
                    if results.get((gamma, precision, seed))
                ]
                for precision in PRECISIONS
            }
            differences = [b - f for f, b in zip(values["float32"], values["mixed_bfloat16"])]
            rows.append(
                [
                    gamma,
                    column,
                    mean_std(values["float32"]),
                    mean_std(values["mixed_bfloat16"]),
                    mean_std(differences),
                    ", ".join(f"{d:+.4g}" for d in differences),
                ]
            )
    print(
        markdown_table(
            [
                "gamma",
                "metric",
                "float32",
                "mixed_bfloat16",
                "bf16 - float32 (per seed, mean ± std)",
                "per seed",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
