"""What the training command does at the end of every epoch, timed at
CelebA size, as a fraction of an epoch.

    python benchmarks/epoch_overheads.py [--steps 3] [--images 1200]
        [--gpu-epoch-seconds 13.9] [--precision float32] [--xla on]

The CelebA computed-gamma recipe's stage 1 (64x64x3, ResNet base 32, 4
scales, 64 latents, batch 100) on synthetic uint8 images, with kvae's own
pieces (kvae.training, kvae.runs, the data pipeline):

- compute: a training step (the epoch's unit), the validation pass (kvae's
  val_loss over CelebA's 19,867 validation images, after every epoch or
  every --validate-every'th), the variance
  law on 5,000 of them, the picture (10 reconstructions and 10 mean
  samples), and once per run the stage-2 encoding of the 162,770 training
  images. Each is timed on --images images and scaled to its count; its
  fraction of an epoch is its time over 1,627 training steps' time measured
  on the same machine, which carries over to a GPU as far as both are
  bound by the same network's arithmetic.
- input/output: writing the latest checkpoint with its optimizer (a full
  `model.save` before; now `kvae.training.checkpoints.CheckpointWriter`, whose epoch
  waits only for the copy of the values while a thread writes the file
  during the next epoch), the best one (a hard link of the latest since
  issue 18; a second `model.save` before), the TensorBoard scalars and the
  run folder's commit. These do not speed up with a GPU: their fraction is
  taken against --gpu-epoch-seconds (default 13.9 s: 162,770 images at the
  11,750 images/s that issue 18 measured for kvae's fit on an NVIDIA H200,
  JAX, mixed_bfloat16, batch 100; not measured here).

Prints a Markdown table, with the total per epoch (compute rows as a
fraction of the epoch here, input/output rows of the GPU epoch; the
"before" rows and the thread's write left out) with validation after
every epoch and after every --validate-every'th. Timings of one run; the
write times depend on the disk.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

CELEBA = {"train": 162_770, "validation": 19_867, "latent_summary": 5_000, "batch": 100}


def seconds(call, repeat=3):
    """The median of `repeat` timed calls (after one untimed call)."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3, help="training steps timed")
    parser.add_argument(
        "--images", type=int, default=1200, help="images of each timed pass (a multiple of 300)"
    )
    parser.add_argument("--gpu-epoch-seconds", type=float, default=13.9)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--xla", choices=("on", "off"), default="on")
    parser.add_argument(
        "--validate-every",
        type=int,
        default=5,
        help="also give the validation row and the total for this --validate-every",
    )
    args = parser.parse_args()

    import keras
    import numpy as np
    from train_throughput import seconds_per_step

    import kvae
    from kvae import devices, metrics, recipes
    from kvae.data.pipeline import Dataset
    from kvae.runs import RunFolder, same_file
    from kvae.training.checkpoints import CheckpointWriter
    from kvae.training.loop import validation_batch_size
    from kvae.training.pictures import stage1_pictures
    from kvae.training.stages import build_stage1

    config = recipes.resolve("celeba", "computed", {"precision": args.precision})
    batch = config.batch_size
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (batch * (args.steps + 1), 64, 64, 3), dtype=np.uint8)
    validation = rng.integers(0, 256, (args.images, 64, 64, 3), dtype=np.uint8)
    dataset = Dataset("celeba", train, validation)
    model = build_stage1(config)
    model.compile(optimizer=kvae.models.adam(config.stage1.lr), jit_compile=args.xla == "on")

    def fit(count, callbacks):
        model.fit(
            dataset.train_batches(batch, seed=0, steps=count),
            epochs=1,
            verbose=0,
            callbacks=callbacks,
        )

    fit(1, [])
    step = statistics.median([seconds_per_step(model, fit, args.steps) for _ in range(3)])
    epoch = step * (CELEBA["train"] // batch)
    per_image = {
        "validation": seconds(
            lambda: model.evaluate(
                dataset.validation_batches(validation_batch_size(batch)), verbose=0
            ),
            repeat=1,
        )
        / args.images,
        "encoder": seconds(lambda: metrics.encode(model, dataset.examples(args.images)), repeat=1)
        / args.images,
    }
    pictures = stage1_pictures(dataset, seed=0)
    folder = Path(tempfile.mkdtemp(prefix="kvae-overheads-"))
    run = RunFolder(folder / "run")
    run.create(config)
    tensorboard = keras.callbacks.TensorBoard(str(folder / "logs"), write_graph=False)
    tensorboard.set_model(model)
    logs = {name: 1.0 for name in ("loss", "recon", "kl", "mse", "gamma", "active", "val_loss")}
    checkpoint = folder / "stage1.next.keras"
    best = folder / "stage1_best.next.keras"
    state = run.empty_state()

    def save_latest():
        model.save(checkpoint)

    save_latest()
    size = os.path.getsize(checkpoint) / 2**20
    validation_seconds = per_image["validation"] * CELEBA["validation"]
    compute = [
        ("validation pass (19,867 images)", validation_seconds),
        ("variance law (5,000 images)", per_image["encoder"] * CELEBA["latent_summary"]),
        (
            "picture (10 reconstructions, 10 samples)",
            seconds(lambda: pictures(model, folder / "p.png")),
        ),
    ]
    once = [
        ("stage-2 encoding, once per run (162,770 images)", per_image["encoder"] * CELEBA["train"])
    ]
    writer = CheckpointWriter(model)
    writer.write(checkpoint)  # the first write builds the writer's copy of the model
    writer.wait()
    hand_over, thread = [], []
    for _ in range(3):
        started = time.perf_counter()
        writer.write(checkpoint)
        hand_over.append(time.perf_counter() - started)
        writer.wait()
        thread.append(time.perf_counter() - started)
    writer.close()
    io = [
        (f"latest checkpoint, model.save ({size:.0f} MiB) (before)", seconds(save_latest)),
        (
            "latest checkpoint, CheckpointWriter: the copy the epoch waits for (now)",
            statistics.median(hand_over),
        ),
        (
            "latest checkpoint, CheckpointWriter: its thread's write (overlaps training)",
            statistics.median(thread),
        ),
        ("best checkpoint, a second model.save (before)", seconds(lambda: model.save(best))),
        ("best checkpoint, hard link (now)", seconds(lambda: same_file(checkpoint, best))),
        ("TensorBoard scalars", seconds(lambda: tensorboard.on_epoch_end(0, logs))),
        ("metrics row and state.json commit", seconds(lambda: run.commit(state, []))),
    ]
    print(
        f"device: {devices.device_name()}; backend {keras.backend.backend()}; {args.precision}; "
        f"XLA {args.xla}; training step {step:.3f} s at batch {batch}, so an epoch of "
        f"{CELEBA['train'] // batch} steps is {epoch:.0f} s here; GPU epoch for the I/O rows: "
        f"{args.gpu_epoch_seconds} s (see --help)"
    )
    print("| per epoch | seconds here | fraction of an epoch |")
    print("|---|---|---|")
    for name, value in compute:
        print(f"| {name} | {value:.2f} | {value / epoch:.2%} (of the {epoch:.0f} s epoch here) |")
    for name, value in io:
        fraction = value / args.gpu_epoch_seconds
        print(
            f"| {name} | {value:.3f} | {fraction:.2%} (of a {args.gpu_epoch_seconds} s GPU epoch) |"
        )
    every = args.validate_every
    validation = validation_seconds / epoch
    total = (
        sum(value for _, value in compute) / epoch
        + sum(value for name, value in io if "(before)" not in name and "(overlaps" not in name)
        / args.gpu_epoch_seconds
    )
    print(
        f"| validation pass with --validate-every {every} (per epoch) | "
        f"{validation_seconds / every:.2f} | {validation / every:.2%} "
        f"(of the {epoch:.0f} s epoch here) |"
    )
    print(f"| **total per epoch, --validate-every 1** | | **{total:.2%}** |")
    print(
        f"| **total per epoch, --validate-every {every}** | | "
        f"**{total - validation + validation / every:.2%}** |"
    )
    for name, value in once:
        share = value / (epoch * config.stage1.epochs)
        print(f"| {name} | {value:.1f} | {share:.3%} of stage 1 ({config.stage1.epochs} epochs) |")


if __name__ == "__main__":
    main()
