"""Training as a library: `train(config, out)` runs a (two-stage) VAE from a
resolved configuration (`kvae.recipes.resolve`) into a run folder
(`kvae.runs`); `resume(out)` continues one. `python -m kvae.train` is the
command-line wrapper.

    from kvae import recipes, training
    config = recipes.resolve("fashion_mnist", "computed", {"epochs": 3, "epochs2": 3})
    training.train(config, "runs/fmnist")
    training.resume("runs/fmnist", {"epochs": 5})   # two more stage-1 epochs

Stage 1 trains first; stage 2 then trains on z = mu + sigma * eps of the
stage-1 posteriors of the training set, fresh eps every batch, with stage 1
frozen. Every epoch is committed atomically (checkpoint, best checkpoint,
picture, metrics row).
"""

import contextlib
import copy
import math
import sys
import time

import numpy as np

from kvae import data, devices, distribute, seeds
from kvae.cli import UsageError
from kvae.runs import RunFolder, default_out, epochs_done, same_file

LATENT_SUMMARY_EXAMPLES = 5000

VALIDATION_ROWS = 256
"""The least rows of a validation batch (`validation_batch_size`)."""

STAGE2_OPTIONS = ("gamma2", "second_dim", "second_depth", "lr2", "lr_epochs2", "lr_fac2")
CONTINUE_OPTIONS = (
    "data_dir",
    "stage",
    "epochs",
    "epochs2",
    "distribute",
    "devices",
    "steps_per_execution",
    "validate_every",
)
"""Options a continued run (resume, or stage 2 on a finished stage 1) may
change: where the data is, which stages to train, how many epochs, on
how many devices (a checkpoint moves between device counts), and how often
to validate."""


# -- models ------------------------------------------------------------------------


def build_stage1(config):
    import kvae

    return kvae.VAE(
        data.data_shape(config["dataset"], config["image_size"], config["dim"]),
        config["latent_dim"],
        net=config["net"],
        net_config=config["net_config"],
        gamma=config["gamma"],
        sigma=config["sigma"],
        kl_weight=config["kl_weight"],
        min_sigma=config.get("min_sigma"),  # absent from runs older than the option
        sigma_warmup=config.get("sigma_warmup") or 0,  # the same
        precision=config["precision"],
        seed=seeds.stage_model_seed(config["seed"], 1),
    )


def build_stage2(config):
    """The second stage: a VAE on the stage-1 latents with its own gamma and
    no KL weight (Asperti & Trentin weight only stage 1)."""
    import kvae

    return kvae.VAE(
        (config["latent_dim"],),
        config["latent_dim"],
        net="stage2",
        net_config={"second_dim": config["second_dim"], "second_depth": config["second_depth"]},
        gamma=config["gamma2"],
        precision=config["precision"],
        seed=seeds.stage_model_seed(config["seed"], 2),
    )


def parameter_counts(config):
    """Trainable parameters of each network (the --dry-run output)."""
    from kvae.networks import count_trainable

    counts = {}
    for stage, build in (("stage1", build_stage1), ("stage2", build_stage2)):
        model = build(config)
        counts[stage] = {
            "encoder": count_trainable(model.encoder),
            "decoder": count_trainable(model.decoder),
        }
        if model.observation.trainable_weights:  # the learned log gamma
            counts[stage]["gamma"] = count_trainable(model.observation)
    return counts


def learning_rate(epoch, lr, lr_fac, lr_epochs):
    """The originals' step schedule: lr * lr_fac ** floor(epoch / lr_epochs)
    for the 0-based epoch; constant when lr_epochs is 0."""
    if lr_epochs <= 0:
        return lr
    return lr * lr_fac ** (epoch // lr_epochs)


# -- training ------------------------------------------------------------------------


class NonFiniteLoss(Exception):
    pass


def _epoch_callback_class():
    import keras

    class EpochEnd(keras.callbacks.Callback):
        """Per step: stop on a non-finite loss. Per epoch: checkpoint, best
        checkpoint, sample picture, metrics row, commit (the checkpoint's
        file, its link and the commit through `writer`, a
        `kvae.saving.CheckpointWriter`)."""

        def __init__(self, run, state, stage, pictures, summary_examples, writer):
            super().__init__()
            self.run, self.state, self.stage, self.pictures = run, state, stage, pictures
            self.summary_examples = summary_examples
            self.writer = writer
            self.failure = None
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_train_batch_end(self, batch, logs=None):
            # Called after each call of the compiled step: `batch` is the
            # call's last step (past the epoch's end in a short last call).
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss) and self.failure is None:
                self.failure = (min(batch + 1, self.params.get("steps") or batch + 1), loss)
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.failure is not None:
                return
            logs = {key: float(value) for key, value in (logs or {}).items()}
            if not all(
                math.isfinite(value) for key, value in logs.items() if key in ("loss", "val_loss")
            ):
                self.failure = ("the end of the epoch", logs.get("val_loss"))
                self.model.stop_training = True
                return
            number = epoch + 1
            stage_state = self.state[f"stage{self.stage}"]
            latest = self.run.checkpoint(self.stage)
            latest_next = latest.with_suffix(".next.keras")
            # The checkpoint's values are copied here and written by the
            # writer's thread while the next epoch trains; the commit below
            # follows the write.
            self.writer.write(latest_next)
            renames = [(latest_next, latest)]
            best = stage_state["best_val_loss"]
            if "val_loss" in logs and (best is None or logs["val_loss"] < best):
                best_file = self.run.checkpoint(self.stage, best=True)
                best_next = best_file.with_suffix(".next.keras")
                self.writer.then(lambda: same_file(latest_next, best_next))
                renames.append((best_next, best_file))
                stage_state["best_val_loss"] = logs["val_loss"]
                stage_state["best_epoch"] = number
            # Before the pictures: a forward pass moves the power-iteration
            # vectors of spectrally normalized layers (Dai & Wipf's networks),
            # so the row describes the checkpoint's values, copied above.
            summary = latent_summary(self.model, self.summary_examples)
            self.pictures(
                self.model, self.run.file(f"samples/stage{self.stage}_epoch{number:04d}.png")
            )
            self.run.append_metrics(
                {
                    **logs,
                    **summary,
                    "epoch": number,
                    "stage": self.stage,
                    "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                    "seconds": round(time.time() - self.started, 3),
                }
            )
            stage_state["epochs_done"] = number
            committed = copy.deepcopy(self.state)
            self.writer.then(lambda: self.run.commit(committed, renames))

    return EpochEnd


def _noise_keeper_class():
    import keras

    class ValidationKeepsTheNoise(keras.callbacks.Callback):
        """Validation draws its z from the model's seed generator, as training
        does; put the generator's state back after each validation pass, so
        the training noise does not depend on when, or whether, validation ran
        (`--validate-every`)."""

        def on_test_begin(self, logs=None):
            self.state = keras.ops.convert_to_numpy(self.model.seed_generator.state)

        def on_test_end(self, logs=None):
            self.model.seed_generator.state.assign(self.state)

    return ValidationKeepsTheNoise


def validation_batch_size(batch_size):
    """The batch of the validation pass: the smallest multiple of the
    training batch with at least VALIDATION_ROWS rows (CelebA's 100: 300).
    The pass is forward only in inference mode, so its means do not depend
    on the batch (zero-weight padding, `Dataset.validation_batches`), and a
    multiple of the training batch still splits evenly over the devices;
    larger batches keep an accelerator busier and cut per-step overhead
    for small training batches."""
    return batch_size * max(1, -(-VALIDATION_ROWS // batch_size))


def validation_epochs(done, total, every):
    """The 1-based epochs after which fit validates (Keras's validation_freq
    as a list): every `every`-th epoch counted from the start of the stage,
    and always the last one, so the best checkpoint can be the final one."""
    return [epoch for epoch in range(done + 1, total + 1) if epoch % every == 0 or epoch == total]


AUTO_STEPS_PER_EXECUTION = 16
"""`--steps-per-execution auto` on an accelerator (issue 18's H200 table:
+6 % at batch 64, +3 % at 100, stage 2's step 1.25 -> 0.75 ms with 32)."""


def steps_per_execution(setting):
    """The steps per call a setting stands for: an int as it is; "auto"
    AUTO_STEPS_PER_EXECUTION on a GPU or TPU and 1 on a CPU, where 16 trains
    as fast (docs/performance.md) but costs about 0.7 s more tracing per
    run on TensorFlow, which short runs feel."""
    if setting != "auto":
        return int(setting)
    return AUTO_STEPS_PER_EXECUTION if devices.accelerator() is not None else 1


def train_stage(run, state, stage, model, dataset, config, pictures):
    """Fit one stage from its last committed epoch to its planned epochs."""
    import keras

    from kvae.saving import CheckpointWriter

    suffix = "2" if stage == "2" else ""
    total = config[f"epochs{suffix}"]
    done = state[f"stage{stage}"]["epochs_done"]
    if done >= total:
        return
    batch_size = config["batch_size"]
    steps = config["steps_per_epoch"] or dataset.steps_per_epoch(batch_size)
    lr, lr_fac, lr_epochs = (
        config[f"lr{suffix}"],
        config[f"lr_fac{suffix}"],
        config[f"lr_epochs{suffix}"],
    )
    writer = CheckpointWriter(model)
    epoch_end = _epoch_callback_class()(
        run, state, stage, pictures, dataset.examples(LATENT_SUMMARY_EXAMPLES), writer
    )
    # fit iterates the batches again each epoch, after on_epoch_begin has
    # named the epoch: epoch e reads batches e * steps, ... of the stream.
    clock = {"epoch": done}
    batches = dataset.train_batches(
        batch_size,
        seed=seeds.stage_model_seed(config["seed"], stage),
        steps=steps,
        epoch=lambda: clock["epoch"],
    )
    callbacks = [
        keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: clock.update(epoch=epoch)
        ),
        keras.callbacks.LearningRateScheduler(
            lambda epoch, _: learning_rate(epoch, lr, lr_fac, lr_epochs)
        ),
        epoch_end,
        _noise_keeper_class()(),
        keras.callbacks.TensorBoard(
            str(run.file(f"logs/stage{stage}")), write_graph=False, profile_batch=0
        ),
    ]
    schedule = config.get("sigma_schedule") if stage == "1" else None
    if schedule:
        callbacks.insert(
            0,
            keras.callbacks.LambdaCallback(
                on_epoch_begin=lambda epoch, logs=None: model.observation.set_sigma(
                    schedule[min(epoch, len(schedule) - 1)]
                )
            ),
        )
    # Steps per call of the compiled step: the run's setting, also for a
    # checkpoint compiled with another (absent from runs older than it). The
    # last call of an epoch runs the steps that are left (finite batches).
    model.steps_per_execution = steps_per_execution(config.get("steps_per_execution", "auto"))
    if distribute.multi_worker() and model.steps_per_execution > 1:
        # Keras's multi-step loop fails under MultiWorkerMirroredStrategy
        # ("You must feed a value for placeholder tensor 'while/cond/...'",
        # keras-team/keras#19246, Keras 3.15).
        print(
            f"--steps-per-execution {model.steps_per_execution}: one step per call across "
            "TensorFlow workers (keras-team/keras#19246); the run folder keeps the setting",
            flush=True,
        )
        model.steps_per_execution = 1
    model.train_function = None
    print(
        f"stage {stage}: epochs {done + 1}-{total}, {steps} steps of {batch_size}, "
        f"{model.steps_per_execution} per call",
        flush=True,
    )
    if distribute.strategy_replicas() > 1 and model.jit_compile is True:
        # XLA-compiled steps fail under tf.distribute on several devices
        # ("Trying to access resource ... located in device CPU:1"); Keras's
        # auto already leaves XLA off there.
        print(
            "--xla on: XLA is off under tf.distribute; the run folder keeps --xla on",
            flush=True,
        )
        model.jit_compile = False
    try:
        model.fit(
            batches,
            epochs=total,
            initial_epoch=done,
            validation_data=dataset.validation_batches(validation_batch_size(batch_size)),
            validation_freq=validation_epochs(done, total, config.get("validate_every") or 1),
            callbacks=callbacks,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    finally:
        writer.close()  # the last epoch's files and commit, also after an error
    if epoch_end.failure is not None:
        where, value = epoch_end.failure
        at = f"by step {where}" if isinstance(where, int) else where
        raise NonFiniteLoss(
            f"non-finite loss ({value}) in stage {stage}, epoch {epochs_done(state, stage) + 1}, "
            f"{at}; the last good checkpoint is {run.checkpoint(stage)} (epoch "
            f"{epochs_done(state, stage)}). Try a lower --lr{suffix}."
        )


def latent_summary(model, examples):
    """The variance law (mean over latents) and the number of inactive
    latents of `model` on `examples` (kvae.metrics)."""
    from kvae import metrics

    mu, log_sigma = metrics.encode(model, examples)
    law = metrics.variance_law(mu, log_sigma)
    return {
        "variance_law": round(float(law["law"].mean()), 6),
        "inactive": int(metrics.inactive_latents(law["mean_sigma2"]).sum()),
    }


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
            images.save_scatter(
                {"data": originals, "reconstruction": reconstructions, "sample": samples}, path
            )
        else:
            images.save_grid(
                np.concatenate([originals, reconstructions, samples]),
                path,
                columns=len(originals),
                scale=2,
            )

    return draw


def stage2_pictures(stage1, dataset, seed):
    """The per-epoch picture of stage 2: two-stage mean samples."""
    from kvae import images
    from kvae.two_stage import TwoStageVAE

    vectors = len(dataset.shape) == 1

    def draw(model, path):
        samples = TwoStageVAE(stage1, model).generate(500 if vectors else 20, seed=seed)
        if vectors:
            images.save_scatter({"data": dataset.examples(500), "sample": samples}, path)
        else:
            images.save_grid(samples, path, columns=10, scale=2)

    return draw


def load_checkpoint(path):
    """A run's checkpoint with its optimizer, compiled as it was (but see
    `train_stage`: steps per call and XLA follow the run)."""
    from kvae import saving

    return saving.load_keras(path, compile=True)


JIT_COMPILE = {"auto": "auto", "on": True, "off": False}


def compiled(model, lr, xla="auto"):
    """Compile with Adam (TF1's epsilon) and the --xla choice; a checkpoint
    keeps both, so a resumed run compiles the same way."""
    from kvae.models import adam

    jit_compile = JIT_COMPILE[xla]
    model.compile(optimizer=adam(lr), jit_compile=jit_compile)
    return model


def run_training(run, config, state):
    """Train the planned stages of a run, continuing from `state`."""
    import keras

    from kvae import metrics

    dataset = data.load(
        config["dataset"],
        config["data_dir"],
        config["image_size"],
        config["dim"],
        config["radius"],
        seed=config["seed"],
    )
    if config["steps_per_epoch"] is None:
        dataset.steps_per_epoch(config["batch_size"])  # fails early on a tiny dataset
    print(
        f"data: {config['dataset']}, {dataset.num_train} training and "
        f"{len(dataset.validation)} validation examples of shape {dataset.shape}",
        flush=True,
    )

    if epochs_done(state, "1") > 0:
        stage1 = load_checkpoint(run.checkpoint("1"))
    else:
        keras.utils.set_random_seed(seeds.stage_model_seed(config["seed"], "1"))
        stage1 = compiled(build_stage1(config), config["lr"], config["xla"])
    if config["stage"] in ("1", "both"):
        train_stage(
            run, state, "1", stage1, dataset, config, stage1_pictures(dataset, config["seed"])
        )
    if config["stage"] == "1" or epochs_done(state, "2") >= config["epochs2"]:
        return

    stage1_final = run.checkpoint("1")
    print(f"stage 2: encoding the training set with {stage1_final}", flush=True)
    stage1 = load_checkpoint(stage1_final)
    mu, log_sigma = metrics.encode(stage1, dataset.train)
    validation_mu, validation_log_sigma = metrics.encode(stage1, dataset.validation)
    latents = data.LatentDataset(
        f"{config['dataset']} stage-1 latents",
        mu,
        log_sigma,
        validation_mu,
        validation_log_sigma,
        seed=config["seed"],
    )
    if config["steps_per_epoch"] is None:  # the same iterations per epoch as stage 1
        config = {**config, "steps_per_epoch": dataset.steps_per_epoch(config["batch_size"])}
    if epochs_done(state, "2") > 0:
        stage2 = load_checkpoint(run.checkpoint("2"))
    else:
        keras.utils.set_random_seed(seeds.stage_model_seed(config["seed"], "2"))
        stage2 = compiled(build_stage2(config), config["lr2"], config["xla"])
    train_stage(
        run, state, "2", stage2, latents, config, stage2_pictures(stage1, dataset, config["seed"])
    )


def continued_config(saved, changes, stage1_done):
    """The saved configuration with the changes a continued run may make
    (`CONTINUE_OPTIONS`, and `STAGE2_OPTIONS` once stage 1 is done); any
    other change that differs from the saved value is a UsageError."""
    config = dict(saved)
    changes = dict(changes or {})
    if "dataset" in changes and changes["dataset"] != saved["dataset"]:
        raise UsageError(f"the run folder holds a {saved['dataset']} run, not {changes['dataset']}")
    changes.pop("dataset", None)
    changeable = CONTINUE_OPTIONS + (STAGE2_OPTIONS if stage1_done else ())
    for key, value in changes.items():
        current = saved["net_config"].get(key) if key in saved["net_config"] else saved.get(key)
        if key in changeable:
            config[key] = value
        elif value != current:
            raise UsageError(
                f"--{key.replace('_', '-')} differs from the run's config.json "
                f"({current!r}); a continued run keeps it"
            )
    return config


def train(config, out=None):
    """Train a fresh run of a resolved configuration into the folder `out`
    (default runs/DATASET-GAMMA, which must not hold a run yet). Returns the
    run folder's Path.

    Raises:
        UsageError: an impossible network or an existing run in `out`.
        NonFiniteLoss: the loss turned NaN or infinite (the last good epoch
            is kept; exit code 3 in the command).
    """
    _start_multi_host(config)
    try:
        build_stage1(config)  # an impossible network fails here, before any file
    except ValueError as error:
        raise UsageError(str(error)) from error
    run = RunFolder(distribute.worker_folder(out or default_out(config)))
    run.create(config)
    return _run(run, config, run.empty_state())


def resume(out, changes=None, stage2_only=False):
    """Continue the run in `out` from its last finished epoch, with the
    `changes` a continued run may make (`continued_config`), e.g.
    {"epochs": 10}. `stage2_only` trains stage 2 on a finished (or stopped)
    stage 1, as `--stage 2`. Returns the run folder's Path."""
    run = RunFolder(distribute.worker_folder(out))
    saved, state = run.load()
    stage1_done = epochs_done(state, "1") >= saved["epochs"] or stage2_only
    config = continued_config(saved, changes, stage1_done=stage1_done)
    _start_multi_host(config)
    if stage2_only:
        if not run.checkpoint("1").is_file():
            raise UsageError(f"--stage 2 needs a trained stage 1 in {run.path}")
        config["stage"] = "both"
        config["epochs"] = min(config["epochs"], epochs_done(state, "1"))
    if config["epochs"] < epochs_done(state, "1") or config["epochs2"] < epochs_done(state, "2"):
        raise UsageError("--epochs / --epochs2 cannot be fewer than the epochs already done")
    run.save_config(config)
    print(
        f"resuming {run.path}: stage 1 at epoch {epochs_done(state, '1')}, "
        f"stage 2 at epoch {epochs_done(state, '2')}",
        flush=True,
    )
    return _run(run, config, state)


def _run(run, config, state):
    import json

    print("configuration:", json.dumps(config, indent=2), flush=True)
    started = time.time()
    with distribution(config):
        run_training(run, config, state)
    print(f"done in {time.time() - started:.0f} s: {run.path}", flush=True)
    return run.path


def _start_multi_host(config):
    """On a multi-host run (TF_CONFIG on TensorFlow, KERAS_DISTRIBUTION_* on
    JAX), join the cluster before the backend runs anything, which both
    require; without --distribute data it is a UsageError (every process
    would train alone)."""
    try:
        index, count = distribute.processes()
        if count <= 1:
            return
        if config.get("distribute", "none") != "data":
            raise UsageError(
                f"this is process {index} of {count} of a multi-host run (TF_CONFIG or "
                "KERAS_DISTRIBUTION_*): pass --distribute data"
            )
        distribute.local_devices(config.get("devices"))  # joins the cluster
    except distribute.DistributeError as error:
        raise UsageError(str(error)) from error


@contextlib.contextmanager
def distribution(config):
    """The devices a run trains on (`config["distribute"]`, absent from runs
    older than the option): one, or data parallelism over the local
    devices (`kvae.distribute.data_parallel`). Bad settings are one-line
    UsageErrors."""
    if config.get("distribute", "none") == "none":
        yield 1
        return
    try:
        devices = distribute.local_devices(config.get("devices"))
        distribute.check_batch(config["batch_size"], len(devices))
    except distribute.DistributeError as error:
        raise UsageError(str(error)) from error
    print(
        f"data parallel over {len(devices)} device(s): {', '.join(devices)}; global batch "
        f"{config['batch_size']}",
        flush=True,
    )
    with distribute.data_parallel(devices) as replicas:
        yield replicas
