"""Images per second of kvae's training input pipeline
(`Dataset.train_batches`, as `kvae.train` feeds `fit`), on the CPU that
feeds the accelerator.

    python benchmarks/input_pipeline.py [--images 50000] [--size 64]
        [--batch 100] [--rounds 5]

Random uint8 images of CelebA's shape (size x size x 3) held in memory, as
kvae keeps a training set; a round reads one epoch (one pass) as float32
batches in [0, 1] through a fresh pipeline, after its first batch (which
pays tf.data's start-up). The table gives the median of the rounds and
their spread. Compare it with a GPU step's images per second
(docs/performance.md): the input is a bottleneck only if it is slower.
"""

import argparse
import statistics
import time


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import numpy as np

    from kvae.data.pipeline import Dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, args.size, args.size, 3), dtype=np.uint8)
    dataset = Dataset("synthetic", images, images[: args.batch])
    steps = dataset.steps_per_epoch(args.batch)
    rates = []
    for number in range(args.rounds):
        iterator = iter(dataset.train_batches(args.batch, seed=0, epoch=lambda n=number: n))
        next(iterator)
        started = time.perf_counter()
        for _ in range(steps - 1):
            next(iterator)
        rates.append((steps - 1) * args.batch / (time.perf_counter() - started))
    print(
        f"{args.images} images of {args.size}x{args.size}x3, batch {args.batch}, "
        f"{args.rounds} rounds of one epoch"
    )
    print("| images/s (median) | spread |")
    print("|---|---|")
    print(f"| {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} |")


if __name__ == "__main__":
    main()
