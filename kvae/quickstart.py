"""A short offline training run: `python -m kvae.quickstart`.

Trains a computed-gamma VAE (the InfoGAN-like network, 16 latents) on
Fashion-MNIST read from local idx files (Debian's `dataset-fashion-mnist`, or
KVAE_DATA_DIR), then writes to --out:
  quickstart.keras: the model, loadable with `kvae.load`;
  samples.png: rows of originals, their reconstructions, and mean samples.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m kvae.quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the Fashion-MNIST idx files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return parser, args


def main(argv=None):
    parser, args = parse_args(sys.argv[1:] if argv is None else argv)
    from kvae import data

    directory = args.data_dir or data.default_fashion_mnist_dir()
    if directory is None:
        parser.error("Fashion-MNIST not found: `apt-get install dataset-fashion-mnist`, "
                     "or pass --data-dir / set KVAE_DATA_DIR to a folder of its idx files")
    try:
        train = data.load_idx_images(directory, "train")
        test = data.load_idx_images(directory, "test")
    except (OSError, ValueError) as error:
        parser.error(str(error))

    import keras

    import kvae
    from kvae.images import save_grid

    keras.utils.set_random_seed(args.seed)
    model = kvae.VAE((28, 28, 1), 16, net="infogan", gamma="computed", seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.lr, epsilon=1e-8))
    needed = args.steps * args.batch_size
    order = np.random.default_rng(args.seed).permutation(len(train))
    images = train[np.resize(order, needed)].astype("float32") / 255.0
    started = time.time()
    model.fit(images, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=2)
    held_out = test[:1000].astype("float32") / 255.0
    metrics = model.evaluate(held_out, batch_size=100, verbose=0, return_dict=True)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "quickstart.keras")
    originals = held_out[:10]
    reconstructions = keras.ops.convert_to_numpy(model.reconstruct(originals))
    samples = keras.ops.convert_to_numpy(model.generate(10, mode="mean", seed=args.seed))
    save_grid(np.concatenate([originals, reconstructions, samples]), args.out / "samples.png",
              columns=10, scale=3)
    print(f"trained {args.steps} steps in {time.time() - started:.0f} s; test loss "
          f"{metrics['loss']:.1f} nats, mse {metrics['mse']:.4f}, gamma {model.gamma():.4f}")
    print(f"wrote {args.out / 'quickstart.keras'} and {args.out / 'samples.png'} "
          "(rows: originals, reconstructions, mean samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
