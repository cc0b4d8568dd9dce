"""The training loop: a run's stages, one `fit` per stage, each epoch
committed to the run folder.

Start-up order (as big_vision's train.py states its own): `train` creates a
fresh run folder and trains from the recipe's configuration; `resume`
reads the run folder back (crash recovery first), applies the changes a
continued run may make, and continues each stage from its last committed
epoch, from the stage's latest checkpoint, with the same optimizer, gamma
and noise state and the same batch order.
"""

import contextlib
import json
import sys
import time

import keras

from kvae import data, devices, distribute, metrics, seeds
from kvae.errors import ConfigError, RunError
from kvae.runs import RunFolder, default_out, epochs_done
from kvae.training import stages
from kvae.training.callbacks import (
    LATENT_SUMMARY_EXAMPLES,
    EpochClock,
    EpochEnd,
    SigmaSchedule,
    ValidationKeepsTheNoise,
)
from kvae.training.checkpoints import CheckpointWriter
from kvae.training.pictures import stage1_pictures, stage2_pictures

VALIDATION_ROWS = 256
"""The least rows of a validation batch (`validation_batch_size`)."""
AUTO_STEPS_PER_EXECUTION = 16
"""`steps_per_execution="auto"` on an accelerator, where fewer host round
trips help (docs/performance.md, "Steps per execution")."""
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
    "keep_best",
)
"""Options a continued run (resume, or stage 2 on a finished stage 1) may
change: where the data is, which stages to train, how many epochs, on how
many devices (a checkpoint moves between device counts), how often to
validate and what to keep of the best checkpoint."""


def validation_batch_size(batch_size):
    """The batch of the validation pass: the smallest multiple of the
    training batch with at least VALIDATION_ROWS rows (CelebA's 100: 300).
    The pass is forward only in inference mode, so its means do not depend
    on the batch (zero-weight padding, `Dataset.validation_batches`), and a
    multiple of the training batch still splits evenly over the devices."""
    return batch_size * max(1, -(-VALIDATION_ROWS // batch_size))


def validation_epochs(done, total, every):
    """The 1-based epochs after which fit validates (Keras's validation_freq
    as a list): every `every`-th epoch counted from the start of the stage,
    and always the last one, so the best checkpoint can be the final one."""
    return [epoch for epoch in range(done + 1, total + 1) if epoch % every == 0 or epoch == total]


def steps_per_execution(setting):
    """The steps per call a setting stands for: an int as it is; "auto"
    AUTO_STEPS_PER_EXECUTION on a GPU or TPU and 1 on a CPU, where 16 trains
    as fast (docs/performance.md) but costs about 0.7 s more tracing per
    run on TensorFlow, which short runs feel."""
    if setting != "auto":
        return int(setting)
    return AUTO_STEPS_PER_EXECUTION if devices.accelerator() is not None else 1


def _prepare_model(model, config):
    """Steps per call and XLA as the run says, also for a checkpoint compiled
    with others: Keras's multi-step loop fails across TensorFlow workers
    (keras-team/keras#19246) and XLA under tf.distribute on several devices
    ("Trying to access resource ... located in device CPU:1")."""
    model.steps_per_execution = steps_per_execution(config.steps_per_execution)
    if distribute.multi_worker() and model.steps_per_execution > 1:
        print(
            f"steps_per_execution {model.steps_per_execution}: one step per call across "
            "TensorFlow workers (keras-team/keras#19246); the run folder keeps the setting",
            flush=True,
        )
        model.steps_per_execution = 1
    model.train_function = None
    if distribute.strategy_replicas() > 1 and model.jit_compile is True:
        print("xla on: XLA is off under tf.distribute; the run folder keeps xla on", flush=True)
        model.jit_compile = False


def train_stage(run, state, stage, model, dataset, config, pictures):
    """Fit one stage (1 or 2) from its last committed epoch to its planned
    epochs; raises NonFiniteLoss when the loss turns NaN or infinite."""
    schedule = config.schedule(stage)
    done = epochs_done(state, stage)
    if done >= schedule.epochs:
        return
    steps = config.steps_per_epoch or dataset.steps_per_epoch(config.batch_size)
    writer = CheckpointWriter(model)
    epoch_end = EpochEnd(
        run,
        state,
        stage,
        pictures,
        dataset.examples(LATENT_SUMMARY_EXAMPLES),
        writer,
        config.keep_best,
    )
    clock = {"epoch": done}  # fit iterates the batches again each epoch, named by the clock
    batches = dataset.train_batches(
        config.batch_size,
        seed=seeds.stage_model_seed(config.seed, stage),
        steps=steps,
        epoch=lambda: clock["epoch"],
    )
    callbacks = [
        EpochClock(clock),
        keras.callbacks.LearningRateScheduler(lambda epoch, _: schedule.learning_rate(epoch)),
        epoch_end,
        ValidationKeepsTheNoise(),
        keras.callbacks.TensorBoard(
            str(run.file(f"logs/stage{stage}")), write_graph=False, profile_batch=0
        ),
    ]
    if stage == 1 and config.sigma_schedule:
        callbacks.insert(0, SigmaSchedule(config.sigma_schedule))
    _prepare_model(model, config)
    print(
        f"stage {stage}: epochs {done + 1}-{schedule.epochs}, {steps} steps of "
        f"{config.batch_size}, {model.steps_per_execution} per call",
        flush=True,
    )
    try:
        model.fit(
            batches,
            epochs=schedule.epochs,
            initial_epoch=done,
            validation_data=dataset.validation_batches(validation_batch_size(config.batch_size)),
            validation_freq=validation_epochs(done, schedule.epochs, config.validate_every),
            callbacks=callbacks,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    finally:
        writer.close()  # the last epoch's files and commit, also after an error
    if epoch_end.failure is not None:
        raise epoch_end.failure_error(run)


def _load_data(config):
    dataset = data.load(
        config.dataset,
        config.data_dir,
        config.image_size,
        config.dim,
        config.radius,
        seed=config.seed,
    )
    if config.steps_per_epoch is None:
        dataset.steps_per_epoch(config.batch_size)  # fails early on a tiny dataset
    print(
        f"data: {config.dataset}, {dataset.num_train} training and "
        f"{len(dataset.validation)} validation examples of shape {dataset.shape}",
        flush=True,
    )
    return dataset


def _stage_model(run, state, config, stage):
    """The stage's latest checkpoint when it has one, else a fresh model."""
    if epochs_done(state, stage) > 0:
        return stages.load_checkpoint(run.checkpoint(stage))
    return stages.fresh(config, stage)


def run_training(run, config, state):
    """Train the planned stages of a run, continuing from `state`."""
    dataset = _load_data(config)
    stage1 = _stage_model(run, state, config, 1)
    if config.stage in ("1", "both"):
        pictures = stage1_pictures(dataset, config.seed)
        train_stage(run, state, 1, stage1, dataset, config, pictures)
    if config.stage == "1" or epochs_done(state, 2) >= config.stage2.epochs:
        return
    stage1_final = run.checkpoint(1)
    print(f"stage 2: encoding the training set with {stage1_final}", flush=True)
    stage1 = stages.load_checkpoint(stage1_final)
    latents = data.LatentDataset(
        f"{config.dataset} stage-1 latents",
        *metrics.encode(stage1, dataset.train),
        *metrics.encode(stage1, dataset.validation),
        seed=config.seed,
    )
    if config.steps_per_epoch is None:  # the same iterations per epoch as stage 1
        config = config.replace(steps_per_epoch=dataset.steps_per_epoch(config.batch_size))
    stage2 = _stage_model(run, state, config, 2)
    pictures = stage2_pictures(stage1, dataset, config.seed)
    train_stage(run, state, 2, stage2, latents, config, pictures)


def continued_config(saved, changes, stage1_done):
    """The saved configuration with the changes a continued run may make
    (`CONTINUE_OPTIONS`, and `STAGE2_OPTIONS` once stage 1 is done); any
    other change that differs from the saved value is a ConfigError naming
    the option."""
    values = saved.to_json()
    changes = dict(changes or {})
    if "dataset" in changes and changes["dataset"] != values["dataset"]:
        raise ConfigError(
            f"the run folder holds a {values['dataset']} run, not {changes['dataset']}",
            argument="dataset",
        )
    changes.pop("dataset", None)
    changeable = CONTINUE_OPTIONS + (STAGE2_OPTIONS if stage1_done else ())
    for key, value in changes.items():
        current = values["net_config"].get(key) if key in values["net_config"] else values.get(key)
        if key in changeable:
            values[key] = value
        elif value != current:
            raise ConfigError(
                f"{key} differs from the run's config.json ({current!r}); a continued run keeps it",
                argument=key,
            )
    return type(saved).from_json(values)


def train(config, out=None):
    """Train a fresh run of a resolved `RunConfig` into the folder `out`
    (default runs/DATASET-GAMMA, which must not hold a run yet). Returns
    the run folder's Path.

    Raises:
        ConfigError: an impossible network.
        RunError: `out` already holds a run.
        NonFiniteLoss: the loss turned NaN or infinite (the last good epoch
            is kept; exit code 3 in the command).
    """
    _start_multi_host(config)
    try:
        stages.build_stage1(config)  # an impossible network fails here, before any file
    except ValueError as error:
        raise ConfigError(str(error), argument="net") from error
    run = RunFolder(distribute.worker_folder(out or default_out(config)))
    run.create(config)
    return _run(run, config, run.empty_state())


def resume(out, changes=None, stage2_only=False):
    """Continue the run in `out` from its last finished epoch, with the
    `changes` a continued run may make (`continued_config`), e.g.
    {"epochs": 10}. `stage2_only` trains stage 2 on a finished (or stopped)
    stage 1. Returns the run folder's Path."""
    run = RunFolder(distribute.worker_folder(out))
    saved, state = run.load()
    stage1_done = epochs_done(state, 1) >= saved.stage1.epochs or stage2_only
    config = continued_config(saved, changes, stage1_done=stage1_done)
    _start_multi_host(config)
    if stage2_only:
        if not run.checkpoint(1).is_file():
            raise RunError(f"stage 2 needs a trained stage 1 in {run.path}", argument="stage")
        done = epochs_done(state, 1)
        config = config.replace(stage="both", epochs=min(config.stage1.epochs, done))
    if config.stage1.epochs < epochs_done(state, 1) or config.stage2.epochs < epochs_done(state, 2):
        raise ConfigError(
            "epochs and epochs2 cannot be fewer than the epochs already done", argument="epochs"
        )
    run.save_config(config)
    print(
        f"resuming {run.path}: stage 1 at epoch {epochs_done(state, 1)}, "
        f"stage 2 at epoch {epochs_done(state, 2)}",
        flush=True,
    )
    return _run(run, config, state)


def _run(run, config, state):
    print("configuration:", json.dumps(config.to_json(), indent=2), flush=True)
    started = time.time()
    with distribution(config):
        run_training(run, config, state)
    print(f"done in {time.time() - started:.0f} s: {run.path}", flush=True)
    return run.path


def _start_multi_host(config):
    """On a multi-host run (TF_CONFIG on TensorFlow, KERAS_DISTRIBUTION_* on
    JAX), join the cluster before the backend runs anything, which both
    require; without distribute="data" every process would train alone."""
    index, count = distribute.processes()
    if count <= 1:
        return
    if config.distribute != "data":
        raise ConfigError(
            f"this is process {index} of {count} of a multi-host run (TF_CONFIG or "
            "KERAS_DISTRIBUTION_*): distribute must be 'data'",
            argument="distribute",
        )
    distribute.local_devices(config.devices)  # joins the cluster


@contextlib.contextmanager
def distribution(config):
    """The devices a run trains on (`config.distribute`): one, or data
    parallelism over the local devices (`kvae.distribute.data_parallel`)."""
    if config.distribute == "none":
        yield 1
        return
    names = distribute.local_devices(config.devices)
    distribute.check_batch(config.batch_size, len(names))
    print(
        f"data parallel over {len(names)} device(s): {', '.join(names)}; global batch "
        f"{config.batch_size}",
        flush=True,
    )
    with distribute.data_parallel(names) as replicas:
        yield replicas
