"""Train a (two-stage) VAE: `python -m kvae.train DATASET [options]`.

Examples:
  python -m kvae.train celeba --gamma computed        # Asperti & Trentin's recipe
  python -m kvae.train cifar10 --gamma learned        # Dai & Wipf's recipe
  python -m kvae.train fashion_mnist --epochs 2 --steps-per-epoch 150 --epochs2 1
  python -m kvae.train celeba --dry-run               # configuration and sizes, as JSON
  python -m kvae.train --resume --out runs/celeba     # continue an interrupted run

DATASET: celeba, cifar10, mnist, fashion_mnist (tensorflow-datasets; mnist and
fashion_mnist from local idx files when found), imagefolder:PATH, manifold2d,
sphere. Every option overrides the dataset's recipe (kvae/recipes.py).

The run folder (--out) holds config.json, metrics.csv (one row per finished
epoch and stage), stage1.keras and stage2.keras (the latest epoch),
stage1_best.keras and stage2_best.keras (the best validation loss), logs/
(TensorBoard) and samples/ (a PNG per epoch).

Exit codes: 0 done, 2 bad input, 3 non-finite loss (the last good checkpoint
is kept), 130 interrupted (resume with --resume).
"""

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from kvae import cli, data, recipes
from kvae.cli import EXIT_BAD_INPUT, UsageError

EXIT_NON_FINITE = 3
EXIT_INTERRUPTED = 130

METRICS_COLUMNS = ("epoch", "stage", "loss", "recon", "kl", "mse", "gamma", "active",
                   "val_loss", "val_mse", "variance_law", "inactive", "lr", "seconds")
"""metrics.csv: the epoch means of the training terms (kvae.models.METRIC_NAMES),
the validation loss and MSE, the variance law (mean over latents of
Var(mu) + mean sigma^2) and the inactive-latent count on the first
LATENT_SUMMARY_EXAMPLES validation examples, the learning rate of the epoch
and its wall time."""

LATENT_SUMMARY_EXAMPLES = 5000

STAGE2_OPTIONS = ("gamma2", "second_dim", "second_depth", "lr2", "lr_epochs2", "lr_fac2")
CONTINUE_OPTIONS = ("data_dir", "stage", "epochs", "epochs2")
"""Options a continued run (--resume, or --stage 2 on a finished stage 1) may
change: where the data is, which stages to train, and how many epochs."""


def build_parser():
    parser = cli.Parser(prog="python -m kvae.train", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", help="dataset name (see above)")
    model = parser.add_argument_group("model")
    model.add_argument("--gamma", choices=recipes.GAMMAS,
                       help="observation model of stage 1 (default computed)")
    model.add_argument("--sigma", type=cli.positive_float, help="gamma for --gamma fixed")
    model.add_argument("--sigma-schedule", type=Path, metavar="CSV",
                       help="--gamma fixed with a sigma per epoch: a CSV with columns epoch "
                            "and sigma, or the metrics.csv of a learned-gamma run (its "
                            "stage-1 gamma column); epochs past its end keep the last value")
    model.add_argument("--min-sigma", type=cli.positive_float,
                       help="--gamma pixel only: a floor on the per-pixel sigma (off by "
                            "default, as the paper; bounds the likelihood of exactly-0 pixels)")
    model.add_argument("--kl-weight", type=cli.non_negative_float)
    model.add_argument("--gamma2", choices=recipes.STAGE2_GAMMAS,
                       help="observation model of stage 2 (default: computed for a computed "
                            "stage 1, else learned)")
    model.add_argument("--net", choices=tuple(recipes.NET_OPTIONS))
    model.add_argument("--latent-dim", type=cli.positive_int)
    for option in ("base-dim", "num-scale", "block-per-scale", "depth-per-block",
                   "kernel-size", "fc-dim"):
        model.add_argument(f"--{option}", type=cli.positive_int, help="resnet option")
    model.add_argument("--width", type=cli.positive_int, help="mlp option")
    model.add_argument("--num-blocks", type=cli.positive_int, help="mlp option")
    model.add_argument("--second-dim", type=cli.positive_int)
    model.add_argument("--second-depth", type=cli.positive_int)
    source = parser.add_argument_group("data")
    source.add_argument("--data-dir", type=Path,
                        help="tfds data folder, or a folder of idx files (also KVAE_DATA_DIR)")
    source.add_argument("--image-size", type=cli.positive_int, help="imagefolder side (default 64)")
    source.add_argument("--dim", type=cli.positive_int, help="sphere dimension D (default 8)")
    source.add_argument("--radius", type=cli.positive_float, help="sphere radius R (default 1)")
    schedule = parser.add_argument_group("training")
    schedule.add_argument("--batch-size", type=cli.positive_int)
    schedule.add_argument("--steps-per-epoch", type=cli.positive_int,
                          help="batches per epoch (default: one pass, remainder dropped)")
    schedule.add_argument("--epochs", type=cli.positive_int)
    schedule.add_argument("--lr", type=cli.positive_float)
    schedule.add_argument("--lr-epochs", type=cli.non_negative_int,
                          help="multiply the lr by --lr-fac every this many epochs (0: never)")
    schedule.add_argument("--lr-fac", type=cli.positive_float)
    schedule.add_argument("--epochs2", type=cli.positive_int)
    schedule.add_argument("--lr2", type=cli.positive_float)
    schedule.add_argument("--lr-epochs2", type=cli.non_negative_int)
    schedule.add_argument("--lr-fac2", type=cli.positive_float)
    schedule.add_argument("--stage", choices=("1", "2", "both"),
                          help="stages to train (default both; 2 needs a finished stage 1 "
                               "in --out)")
    schedule.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    schedule.add_argument("--xla", choices=("auto", "on", "off"),
                          help="XLA-compile the train step (default auto: Keras's choice, off "
                               "on CPU-only TensorFlow, on for GPUs and JAX)")
    schedule.add_argument("--seed", type=int)
    run = parser.add_argument_group("run")
    run.add_argument("--out", type=Path, help="run folder (default runs/DATASET-GAMMA)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--dry-run", action="store_true",
                     help="print the configuration and parameter counts as JSON; no training")
    return parser


_NOT_CONFIG = ("resume", "dry_run", "out")


def given_options(args):
    """The configuration options given on the command line (None = not given)."""
    options = {key: value for key, value in vars(args).items()
               if key not in _NOT_CONFIG and value is not None}
    for key in ("data_dir", "sigma_schedule"):
        if key in options:
            options[key] = str(options[key])
    return options


def read_sigma_schedule(path):
    """The per-epoch sigma values of a schedule file (see --sigma-schedule),
    in epoch order."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise UsageError(f"cannot read --sigma-schedule {path}: {error}") from error
    rows = [row for row in rows if row.get("stage", "1") == "1"]
    column = "sigma" if rows and "sigma" in rows[0] else "gamma"
    try:
        schedule = [float(row[column]) for row in sorted(rows, key=lambda r: int(r["epoch"]))]
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"--sigma-schedule {path} needs columns epoch and sigma (or gamma): "
                         f"{error}") from error
    if not schedule or not all(math.isfinite(v) and v > 0 for v in schedule):
        raise UsageError(f"--sigma-schedule {path} needs at least one row of finite sigma > 0")
    return schedule


def resolve_config(args):
    """The full configuration from the command line (a fresh run)."""
    if not args.dataset:
        raise UsageError("give a DATASET (or --resume with --out)")
    options = given_options(args)
    options.pop("dataset")
    gamma = options.pop("gamma", "computed")
    if "sigma_schedule" in options:
        options["sigma_schedule"] = read_sigma_schedule(options["sigma_schedule"])
    try:
        return recipes.resolve(args.dataset, gamma, options)
    except (recipes.RecipeError, data.DataError, ValueError) as error:
        raise UsageError(str(error)) from error


def continued_config(saved, args, stage1_done):
    """The saved configuration with the options a continued run may change."""
    config = dict(saved)
    options = given_options(args)
    if "dataset" in options and options["dataset"] != saved["dataset"]:
        raise UsageError(f"--out holds a {saved['dataset']} run, not {options['dataset']}")
    options.pop("dataset", None)
    changeable = CONTINUE_OPTIONS + (STAGE2_OPTIONS if stage1_done else ())
    for key, value in options.items():
        current = saved["net_config"].get(key) if key in saved["net_config"] else saved.get(key)
        if key in changeable:
            config[key] = value
        elif value != current:
            raise UsageError(f"--{key.replace('_', '-')} differs from the run's config.json "
                             f"({current!r}); a continued run keeps it")
    return config


# -- models ------------------------------------------------------------------------


def build_stage1(config):
    import kvae

    return kvae.VAE(
        data.data_shape(config["dataset"], config["image_size"], config["dim"]),
        config["latent_dim"], net=config["net"], net_config=config["net_config"],
        gamma=config["gamma"], sigma=config["sigma"], kl_weight=config["kl_weight"],
        min_sigma=config.get("min_sigma"),  # absent from runs older than the option
        precision=config["precision"], seed=config["seed"],
    )


def build_stage2(config):
    """The second stage: a VAE on the stage-1 latents with its own gamma and
    no KL weight (Asperti & Trentin weight only stage 1)."""
    import kvae

    return kvae.VAE(
        (config["latent_dim"],), config["latent_dim"], net="stage2",
        net_config={"second_dim": config["second_dim"], "second_depth": config["second_depth"]},
        gamma=config["gamma2"], precision=config["precision"], seed=config["seed"] + 1,
    )


def parameter_counts(config):
    """Trainable parameters of each network (the --dry-run output)."""
    from kvae.networks import count_trainable

    counts = {}
    for stage, build in (("stage1", build_stage1), ("stage2", build_stage2)):
        model = build(config)
        counts[stage] = {"encoder": count_trainable(model.encoder),
                         "decoder": count_trainable(model.decoder)}
        if model.observation.trainable_weights:  # the learned log gamma
            counts[stage]["gamma"] = count_trainable(model.observation)
    return counts


def learning_rate(epoch, lr, lr_fac, lr_epochs):
    """The originals' step schedule: lr * lr_fac ** floor(epoch / lr_epochs)
    for the 0-based epoch; constant when lr_epochs is 0."""
    if lr_epochs <= 0:
        return lr
    return lr * lr_fac ** (epoch // lr_epochs)


# -- the run folder ------------------------------------------------------------------


class RunFolder:
    """A run folder and its crash-safe bookkeeping.

    The end of an epoch is committed in one atomic write of state.json: the
    new checkpoint is first written beside the old one (stageN.next.keras),
    the metrics row appended, then state.json records the finished epoch
    and the renames still to do, which are then done. A run killed at any
    point resumes from the last committed epoch: pending renames are redone,
    uncommitted files and metrics rows are dropped.
    """

    def __init__(self, path):
        self.path = Path(path)

    def file(self, name):
        return self.path / name

    def checkpoint(self, stage, best=False):
        return self.file(f"stage{stage}{'_best' if best else ''}.keras")

    def exists(self):
        return self.file("config.json").is_file()

    def create(self, config):
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists() or self.file("state.json").exists():
            raise UsageError(f"{self.path} already holds a run; use --resume to continue it "
                             "or choose another --out")
        self.save_config(config)
        self._write_json("state.json", self.empty_state())
        with open(self.file("metrics.csv"), "w", newline="") as handle:
            csv.writer(handle).writerow(METRICS_COLUMNS)

    def save_config(self, config):
        self._write_json("config.json", config)

    @staticmethod
    def empty_state():
        return {"stage1": {"epochs_done": 0, "best_val_loss": None},
                "stage2": {"epochs_done": 0, "best_val_loss": None}, "pending": []}

    def load(self):
        """(config, state) of an existing run, after recovering from a crash."""
        if not self.exists():
            raise UsageError(f"no run to resume in {self.path} (no config.json)")
        try:
            config = json.loads(self.file("config.json").read_text())
            state = json.loads(self.file("state.json").read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the run in {self.path}: {error}") from error
        self._finish_renames(state)
        for stray in self.path.glob("*.next.keras"):
            stray.unlink()
        self._truncate_metrics(state)
        return config, state

    def commit(self, state, renames):
        """Make `state` the committed state; then move `renames` (src, dst)."""
        state["pending"] = [[str(src), str(dst)] for src, dst in renames]
        self._write_json("state.json", state)
        self._finish_renames(state)
        state["pending"] = []
        self._write_json("state.json", state)

    def append_metrics(self, row):
        with open(self.file("metrics.csv"), "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(column, "") for column in METRICS_COLUMNS])
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self):
        with open(self.file("metrics.csv"), newline="") as handle:
            return list(csv.DictReader(handle))

    def _finish_renames(self, state):
        for src, dst in state.get("pending", []):
            if Path(src).exists():
                os.replace(src, dst)

    def _truncate_metrics(self, state):
        done = {stage: state[f"stage{stage}"]["epochs_done"] for stage in ("1", "2")}
        rows = [row for row in self.read_metrics() if int(row["epoch"]) <= done[row["stage"]]]
        unique = {(row["stage"], row["epoch"]): row for row in rows}
        temporary = self.file("metrics.csv.tmp")
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRICS_COLUMNS)
            writer.writeheader()
            writer.writerows(unique.values())
        os.replace(temporary, self.file("metrics.csv"))

    def _write_json(self, name, value):
        cli.write_json(self.file(name), value)


# -- training ------------------------------------------------------------------------


class NonFiniteLoss(Exception):
    pass


def _epoch_callback_class():
    import keras

    class EpochEnd(keras.callbacks.Callback):
        """Per step: stop on a non-finite loss. Per epoch: checkpoint, best
        checkpoint, sample picture, metrics row, commit."""

        def __init__(self, run, state, stage, pictures, summary_examples):
            super().__init__()
            self.run, self.state, self.stage, self.pictures = run, state, stage, pictures
            self.summary_examples = summary_examples
            self.failure = None
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss) and self.failure is None:
                self.failure = (batch + 1, loss)
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.failure is not None:
                return
            logs = {key: float(value) for key, value in (logs or {}).items()}
            if not all(math.isfinite(value) for key, value in logs.items()
                       if key in ("loss", "val_loss")):
                self.failure = ("the end of the epoch", logs.get("val_loss"))
                self.model.stop_training = True
                return
            number = epoch + 1
            stage_state = self.state[f"stage{self.stage}"]
            latest = self.run.checkpoint(self.stage)
            latest_next = latest.with_suffix(".next.keras")
            self.model.save(latest_next)
            renames = [(latest_next, latest)]
            best = stage_state["best_val_loss"]
            if "val_loss" in logs and (best is None or logs["val_loss"] < best):
                best_file = self.run.checkpoint(self.stage, best=True)
                best_next = best_file.with_suffix(".next.keras")
                self.model.save(best_next)
                renames.append((best_next, best_file))
                stage_state["best_val_loss"] = logs["val_loss"]
                stage_state["best_epoch"] = number
            self.pictures(self.model, self.run.file(
                f"samples/stage{self.stage}_epoch{number:04d}.png"))
            self.run.append_metrics({
                **logs, **latent_summary(self.model, self.summary_examples),
                "epoch": number, "stage": self.stage,
                "lr": float(self.model.optimizer.learning_rate),
                "seconds": round(time.time() - self.started, 3),
            })
            stage_state["epochs_done"] = number
            self.run.commit(self.state, renames)

    return EpochEnd


def train_stage(run, state, stage, model, dataset, config, pictures):
    """Fit one stage from its last committed epoch to its planned epochs."""
    import keras

    suffix = "2" if stage == "2" else ""
    total = config[f"epochs{suffix}"]
    done = state[f"stage{stage}"]["epochs_done"]
    if done >= total:
        return
    batch_size = config["batch_size"]
    steps = config["steps_per_epoch"] or dataset.steps_per_epoch(batch_size)
    lr, lr_fac, lr_epochs = (config[f"lr{suffix}"], config[f"lr_fac{suffix}"],
                             config[f"lr_epochs{suffix}"])
    epoch_end = _epoch_callback_class()(run, state, stage, pictures,
                                        dataset.examples(LATENT_SUMMARY_EXAMPLES))
    callbacks = [
        keras.callbacks.LearningRateScheduler(
            lambda epoch, _: learning_rate(epoch, lr, lr_fac, lr_epochs)),
        epoch_end,
        keras.callbacks.TensorBoard(str(run.file(f"logs/stage{stage}")), write_graph=False,
                                    profile_batch=0),
    ]
    schedule = config.get("sigma_schedule") if stage == "1" else None
    if schedule:
        callbacks.insert(0, keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: model.observation.set_sigma(
                schedule[min(epoch, len(schedule) - 1)])))
    print(f"stage {stage}: epochs {done + 1}-{total}, {steps} steps of {batch_size}",
          flush=True)
    model.fit(
        dataset.train_batches(batch_size, seed=config["seed"] * 1000 + done),
        steps_per_epoch=steps, epochs=total, initial_epoch=done,
        validation_data=dataset.validation_batches(batch_size),
        callbacks=callbacks, shuffle=False, verbose=1 if sys.stdout.isatty() else 2,
    )
    if epoch_end.failure is not None:
        where, value = epoch_end.failure
        at = f"step {where}" if isinstance(where, int) else where
        raise NonFiniteLoss(
            f"non-finite loss ({value}) in stage {stage}, epoch {done_after(state, stage) + 1}, "
            f"{at}; the last good checkpoint is {run.checkpoint(stage)} (epoch "
            f"{done_after(state, stage)}). Try a lower --lr{suffix}.")


def done_after(state, stage):
    return state[f"stage{stage}"]["epochs_done"]


def latent_summary(model, examples):
    """The variance law (mean over latents) and the number of inactive
    latents of `model` on `examples` (kvae.metrics)."""
    from kvae import metrics

    mu, log_sigma = metrics.encode(model, examples)
    law = metrics.variance_law(mu, log_sigma)
    return {"variance_law": round(float(law["law"].mean()), 6),
            "inactive": int(metrics.inactive_latents(law["mean_sigma2"]).sum())}


def stage1_pictures(dataset, seed):
    """The per-epoch picture of stage 1: validation originals, their
    reconstructions and mean samples (images), or a scatter of the data,
    reconstructions and samples (vectors)."""
    from keras import ops

    from kvae import images

    vectors = len(dataset.shape) == 1
    originals = dataset.examples(500 if vectors else 10)

    def draw(model, path):
        reconstructions = ops.convert_to_numpy(model.reconstruct(originals))
        samples = ops.convert_to_numpy(model.generate(len(originals), mode="mean", seed=seed))
        if vectors:
            images.save_scatter({"data": originals, "reconstruction": reconstructions,
                                 "sample": samples}, path)
        else:
            images.save_grid(np.concatenate([originals, reconstructions, samples]), path,
                             columns=len(originals), scale=2)

    return draw


def stage2_pictures(stage1, dataset, seed):
    """The per-epoch picture of stage 2: two-stage mean samples."""
    from keras import ops

    from kvae import images
    from kvae.models import generate_two_stage

    vectors = len(dataset.shape) == 1

    def draw(model, path):
        samples = ops.convert_to_numpy(generate_two_stage(stage1, model, 500 if vectors else 20,
                                                          seed=seed))
        if vectors:
            images.save_scatter({"data": dataset.examples(500), "sample": samples}, path)
        else:
            images.save_grid(samples, path, columns=10, scale=2)

    return draw


def load_checkpoint(path):
    import kvae

    return kvae.load(path, compile=True)


JIT_COMPILE = {"auto": "auto", "on": True, "off": False}


def compiled(model, lr, xla="auto"):
    """Compile with Adam (TF1's epsilon) and the --xla choice; a checkpoint
    keeps both, so a resumed run compiles the same way."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8),
                  jit_compile=JIT_COMPILE[xla])
    return model


def run_training(run, config, state):
    """Train the planned stages of a run, continuing from `state`."""
    import keras

    from kvae import metrics

    keras.utils.set_random_seed(config["seed"] + done_after(state, "1") + done_after(state, "2"))
    dataset = data.load(config["dataset"], config["data_dir"], config["image_size"],
                        config["dim"], config["radius"], seed=config["seed"])
    if config["steps_per_epoch"] is None:
        dataset.steps_per_epoch(config["batch_size"])  # fails early on a tiny dataset
    print(f"data: {config['dataset']}, {dataset.num_train} training and "
          f"{len(dataset.validation)} validation examples of shape {dataset.shape}", flush=True)

    if done_after(state, "1") > 0:
        stage1 = load_checkpoint(run.checkpoint("1"))
    else:
        stage1 = compiled(build_stage1(config), config["lr"], config["xla"])
    if config["stage"] in ("1", "both"):
        train_stage(run, state, "1", stage1, dataset, config,
                    stage1_pictures(dataset, config["seed"]))
    if config["stage"] == "1" or done_after(state, "2") >= config["epochs2"]:
        return

    stage1_final = run.checkpoint("1")
    print(f"stage 2: encoding the training set with {stage1_final}", flush=True)
    stage1 = load_checkpoint(stage1_final)
    mu, log_sigma = metrics.encode(stage1, dataset.train)
    validation_mu, validation_log_sigma = metrics.encode(stage1, dataset.validation)
    latents = data.LatentDataset(f"{config['dataset']} stage-1 latents", mu, log_sigma,
                                 validation_mu, validation_log_sigma, seed=config["seed"])
    if config["steps_per_epoch"] is None:  # the same iterations per epoch as stage 1
        config = {**config, "steps_per_epoch": dataset.steps_per_epoch(config["batch_size"])}
    if done_after(state, "2") > 0:
        stage2 = load_checkpoint(run.checkpoint("2"))
    else:
        stage2 = compiled(build_stage2(config), config["lr2"], config["xla"])
    train_stage(run, state, "2", stage2, latents, config,
                stage2_pictures(stage1, dataset, config["seed"]))


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        return _main(args)
    except (UsageError, data.DataError) as error:
        print(f"kvae.train: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteLoss as error:
        print(f"kvae.train: stopped: {error}", file=sys.stderr)
        return EXIT_NON_FINITE
    except KeyboardInterrupt:
        print("kvae.train: interrupted; the last finished epoch is saved, continue with "
              "--resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(args):
    continuing = args.resume or args.stage == "2"
    if args.dry_run:
        if continuing:
            raise UsageError("--dry-run describes a new run; drop --resume / --stage 2")
        config = resolve_config(args)
        try:
            params = parameter_counts(config)
        except ValueError as error:
            raise UsageError(str(error)) from error
        print(json.dumps({"config": config, "params": params}))
        return 0

    if continuing:
        if args.out is None:
            raise UsageError("--resume and --stage 2 need --out (the run folder)")
        run = RunFolder(args.out)
        saved, state = run.load()
        stage1_done = done_after(state, "1") >= saved["epochs"] or args.stage == "2"
        config = continued_config(saved, args, stage1_done=stage1_done)
        if config["stage"] == "2":
            if not run.checkpoint("1").is_file():
                raise UsageError(f"--stage 2 needs a trained stage 1 in {run.path}")
            config["stage"] = "both"
            config["epochs"] = min(config["epochs"], done_after(state, "1"))
        if config["epochs"] < done_after(state, "1") or config["epochs2"] < done_after(state, "2"):
            raise UsageError("--epochs / --epochs2 cannot be fewer than the epochs already done")
        run.save_config(config)
        print(f"resuming {run.path}: stage 1 at epoch {done_after(state, '1')}, "
              f"stage 2 at epoch {done_after(state, '2')}", flush=True)
    else:
        config = resolve_config(args)
        try:
            build_stage1(config)  # an impossible network fails here, before any file
        except ValueError as error:
            raise UsageError(str(error)) from error
        out = args.out or Path("runs") / f"{config['dataset'].replace(':', '-').replace('/', '_')}" \
                                          f"-{config['gamma']}"
        run = RunFolder(out)
        run.create(config)
        state = run.empty_state()
    print("configuration:", json.dumps(config, indent=2), flush=True)
    started = time.time()
    run_training(run, config, state)
    print(f"done in {time.time() - started:.0f} s: {run.path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
