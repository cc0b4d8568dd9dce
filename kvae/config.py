"""The run configuration: `RunConfig`, the object a training run carries,
with every option's default and command-line form, written once.

A run's options are flat on the command line and in config.json (`epochs`,
`lr2`, ...); in a `RunConfig` each stage's schedule is a `Schedule`
(`config.stage1.lr`, `config.schedule(2).epochs`). `RunConfig.from_json`
reads any config.json kvae has written, filling the options a file predates
with their defaults, so that old runs resume; `to_json` writes the flat
keys in their historical order (`FIELDS`). The defaults are Dai & Wipf's
command-line defaults (original-code.md A.5, A.8), which most recipes start
from; `kvae.recipes` holds what each recipe changes. `python -m kvae.train`'s
options are built from the same fields (`add_arguments`), and the network
options from `kvae.networks.NETWORKS`.

Plain Python: no Keras here, so that the command parses and checks its
options without TensorFlow or JAX.
"""

import dataclasses

from kvae import cli, networks
from kvae.errors import ConfigError
from kvae.options import GAMMAS, PRECISIONS, STAGE2_GAMMAS, check_removed_options

XLA_CHOICES = ("auto", "on", "off")
STAGES = ("1", "2", "both")
"""Which stages a run trains (`--stage`)."""
DISTRIBUTE_CHOICES = ("none", "data")


@dataclasses.dataclass
class Schedule:
    """One stage's optimisation: `epochs` epochs at the learning rate `lr`,
    multiplied by `lr_fac` every `lr_epochs` epochs (0: never), the
    originals' step schedule."""

    epochs: int
    lr: float
    lr_epochs: int
    lr_fac: float

    def learning_rate(self, epoch):
        """lr * lr_fac ** floor(epoch / lr_epochs) for the 0-based epoch;
        constant when lr_epochs is 0."""
        if self.lr_epochs <= 0:
            return self.lr
        return self.lr * self.lr_fac ** (epoch // self.lr_epochs)


SCHEDULE_OPTIONS = {
    "epochs": ("epochs", cli.positive_int),
    "lr": ("learning rate", cli.positive_float),
    "lr_epochs": (
        "multiply the learning rate by lr-fac every this many epochs (0: never)",
        cli.non_negative_int,
    ),
    "lr_fac": ("learning-rate factor", cli.positive_float),
}
"""A schedule's options: (help, argparse type); stage 2's flat names end in
2 (`lr2`)."""
SCHEDULE_DEFAULTS = {1: Schedule(400, 1e-4, 150, 0.5), 2: Schedule(800, 1e-4, 300, 0.5)}


def schedule_key(option, stage):
    """The flat name of a schedule option of a stage: epochs, epochs2, ..."""
    return option if stage == 1 else f"{option}2"


def option(default, help, type=None, choices=None, on_command_line=True):  # noqa: A002
    """A dataclass field with its command-line metadata (argparse's help,
    type and choices)."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "type": type, "choices": choices, "cli": on_command_line},
    )


def schedule_field(stage):
    return dataclasses.field(
        default_factory=lambda: dataclasses.replace(SCHEDULE_DEFAULTS[stage]),
        metadata={"schedule": stage},
    )


FULL_EVALUATION = 10000
"""Examples of the split, and generated examples per set, in a full
evaluation: the originals' protocol."""


@dataclasses.dataclass
class RunConfig:
    """Every option of a run, in config.json's order (a `Schedule` stands
    for each stage's four schedule keys)."""

    # -- data
    dataset: str = option(None, "dataset name (see kvae.data.DATASETS)", on_command_line=False)
    data_dir: str | None = option(
        None,
        "tfds data folder, a folder of idx files or of emoji packages (also KVAE_DATA_DIR)",
        type=str,
    )
    image_size: int = option(64, "imagefolder and emoji side", type=cli.positive_int)
    dim: int = option(8, "sphere dimension D", type=cli.positive_int)
    radius: float = option(1.0, "sphere radius R", type=cli.positive_float)
    # -- the model
    gamma: str = option("computed", "observation model of stage 1", choices=GAMMAS)
    sigma: float | None = option(None, "gamma for --gamma fixed", type=cli.positive_float)
    sigma_schedule: list[float] | None = option(
        None,
        "--gamma fixed with a sigma per epoch: a CSV with columns epoch and sigma, or "
        "the metrics.csv of a learned-gamma run (its stage-1 gamma column); epochs "
        "past its end keep the last value",
        type=str,
    )
    min_sigma: float | None = option(
        None,
        "--gamma pixel only: a floor on the per-pixel sigma (off by default, as the "
        "paper; bounds the likelihood of exactly-0 pixels)",
        type=cli.positive_float,
    )
    kl_weight: float | str = option(
        1.0,
        "weight of the KL term (a recipe may give '(2H/latent_dim)^2', Asperti & Trentin's)",
        type=cli.non_negative_float,
    )
    gamma2: str | None = option(
        None,
        "observation model of stage 2 (default: computed for a computed stage 1, else learned)",
        choices=STAGE2_GAMMAS,
    )
    net: str = option("infogan", "stage-1 network", choices=networks.STAGE1_NETWORKS)
    net_config: dict = option(None, "the network's options", on_command_line=False)
    latent_dim: int = option(64, "latent dimensions of stage 1 (and 2)", type=cli.positive_int)
    second_dim: int = option(
        networks.NETWORKS["stage2"]["defaults"]["second_dim"],
        "stage-2 width",
        type=cli.positive_int,
    )
    second_depth: int = option(
        networks.NETWORKS["stage2"]["defaults"]["second_depth"],
        "stage-2 depth",
        type=cli.positive_int,
    )
    # -- the schedule
    batch_size: int = option(64, "examples per batch", type=cli.positive_int)
    steps_per_epoch: int | None = option(
        None, "batches per epoch (default: one pass, remainder dropped)", type=cli.positive_int
    )
    stage1: Schedule = schedule_field(1)
    stage2: Schedule = schedule_field(2)
    stage: str = option(
        "both", "stages to train (2 needs a finished stage 1 in --out)", choices=STAGES
    )
    precision: str = option(
        "float32",
        "compute precision of the networks; auto: mixed_bfloat16 on GPUs of compute "
        "capability 8.0 or more and TPUs, float32 elsewhere",
        choices=(*PRECISIONS, "auto"),
    )
    xla: str = option(
        "auto",
        "XLA-compile the train step (auto: Keras's choice, off on "
        "CPU-only TensorFlow, on for GPUs and JAX)",
        choices=XLA_CHOICES,
    )
    seed: int = option(0, "seeds every random stream (kvae.seeds)", type=int)
    source: str = option("", "where the recipe comes from", on_command_line=False)
    # -- where it runs (may change when a run is continued)
    distribute: str = option(
        "none",
        "data: data parallelism over the local accelerators (keras.distribution "
        "on JAX, tf.distribute on TensorFlow); the global batch is --batch-size",
        choices=DISTRIBUTE_CHOICES,
    )
    devices: int | None = option(
        None, "with --distribute data: use the first N devices (default all)", type=cli.positive_int
    )
    steps_per_execution: int | str = option(
        "auto",
        "train steps per call of the compiled step (Keras's steps_per_execution): fewer "
        "host round trips on accelerators; every step still updates gamma, the results do "
        "not change (an epoch's last call runs the steps left), and step callbacks (the "
        "non-finite loss check, the progress bar) see the end of each call; auto: 16 on a "
        "GPU or TPU, 1 on a CPU",
        type=cli.positive_int_or_auto,
    )
    # -- the model again (added after the fields above; config.json keeps the order)
    sigma_warmup: int = option(
        0,
        "--gamma pixel only: share one sigma over all pixels for this many training steps, "
        "then hand over to the per-pixel sigma over as many more (0, the default, is the "
        "paper's LV-VAE; a deviation, see the README)",
        type=cli.non_negative_int,
    )
    # -- where it runs, again
    validate_every: int = option(
        1,
        "compute the validation loss (and so choose the best checkpoint) every N epochs "
        "and at the last one; training does not depend on N (validation does not draw "
        "from the training noise)",
        type=cli.positive_int,
    )
    keep_best: str = option(
        "full",
        "the best checkpoint (stageN_best.keras): full (with the optimizer, resumable), "
        "weights (without the optimizer: a quarter of the size for a CelebA run) or none",
        choices=("full", "weights", "none"),
    )

    def __post_init__(self):
        if self.net_config is None:
            self.net_config = {}

    # -- the flat form (config.json, the command line, recipes) --------------------------

    @classmethod
    def from_json(cls, values):
        """A RunConfig from flat keys (a config.json, a recipe's overrides
        applied to the defaults): options a file predates take their
        defaults, removed ones are refused unless neutral, unknown ones are
        a ConfigError naming them."""
        values = dict(values)
        try:
            check_removed_options(values)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown configuration key(s): {', '.join(unknown)}", argument=unknown[0]
            )
        merged = {**defaults(), **values}
        arguments = {}
        for field in dataclasses.fields(cls):
            stage = field.metadata.get("schedule")
            if stage is None:
                arguments[field.name] = merged[field.name]
            else:
                arguments[field.name] = Schedule(
                    **{key: merged[schedule_key(key, stage)] for key in SCHEDULE_OPTIONS}
                )
        arguments["net_config"] = dict(arguments["net_config"] or {})
        return cls(**arguments)

    def to_json(self):
        """The flat keys of config.json, in `FIELDS` order."""
        values = {}
        for field in dataclasses.fields(self):
            stage = field.metadata.get("schedule")
            if stage is None:
                values[field.name] = getattr(self, field.name)
            else:
                schedule = getattr(self, field.name)
                for key in SCHEDULE_OPTIONS:
                    values[schedule_key(key, stage)] = getattr(schedule, key)
        values["net_config"] = dict(values["net_config"])
        return {key: values[key] for key in FIELDS}

    def replace(self, **changes):
        """A copy with flat keys changed (`epochs2=3`, `stage="both"`)."""
        return RunConfig.from_json({**self.to_json(), **changes})

    def schedule(self, stage):
        """The `Schedule` of stage 1 or 2."""
        return self.stage1 if stage == 1 else self.stage2


def _flat_fields():
    names = []
    for field in dataclasses.fields(RunConfig):
        stage = field.metadata.get("schedule")
        if stage is None:
            names.append(field.name)
        else:
            names += [schedule_key(key, stage) for key in SCHEDULE_OPTIONS]
    return tuple(names)


FIELDS = _flat_fields()
"""Every key of config.json, in order: the keys of old runs first, options
added since at the end."""


def defaults():
    """The default of every flat key, as a dict (net_config empty)."""
    values = {}
    for field in dataclasses.fields(RunConfig):
        stage = field.metadata.get("schedule")
        if stage is None:
            values[field.name] = field.default
        else:
            schedule = SCHEDULE_DEFAULTS[stage]
            for key in SCHEDULE_OPTIONS:
                values[schedule_key(key, stage)] = getattr(schedule, key)
    values["net_config"] = {}
    return values


def network_options():
    """{option: (networks that take it)} for the stage-1 networks, from
    `kvae.networks.NETWORKS`."""
    options = {}
    for net in networks.STAGE1_NETWORKS:
        for key in networks.defaults(net):
            options.setdefault(key, []).append(net)
    return {key: tuple(nets) for key, nets in options.items()}


def add_arguments(parser):
    """Add an option for every command-line key of RunConfig, and for every
    network option, to an argparse parser (defaults None: not given)."""
    group = parser.add_argument_group("run configuration (defaults: the dataset's recipe)")
    for field in dataclasses.fields(RunConfig):
        stage = field.metadata.get("schedule")
        if stage is not None:
            for key, (help_text, kind) in SCHEDULE_OPTIONS.items():
                group.add_argument(
                    "--" + schedule_key(key, stage).replace("_", "-"),
                    type=kind,
                    default=None,
                    help=f"stage-{stage} {help_text}",
                )
            continue
        meta = field.metadata
        if not meta["cli"]:
            continue
        kwargs = {"help": meta["help"], "default": None}
        if meta["choices"]:
            kwargs["choices"] = meta["choices"]
        if meta["type"]:
            kwargs["type"] = meta["type"]
        group.add_argument("--" + field.name.replace("_", "-"), **kwargs)
    nets = parser.add_argument_group("network options (defaults: the network's)")
    for key, owners in network_options().items():
        nets.add_argument(
            "--" + key.replace("_", "-"),
            type=cli.positive_int,
            default=None,
            help=f"{', '.join(owners)} option",
        )
    return parser
