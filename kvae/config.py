"""The run configuration: every option of a training run, its default and
its command-line form, written once.

`RunConfig` lists the fields of config.json in its order. Its defaults are
Dai & Wipf's command-line defaults (original-code.md A.5, A.8), which most
recipes start from; `kvae.recipes` holds only what each recipe changes.
`python -m kvae.train`'s options are built from these fields
(`add_arguments`), and the network options from each network's own
DEFAULTS (`kvae.networks`).
"""

import dataclasses

from kvae import cli, networks, observation
from kvae.models import PRECISIONS
from kvae.networks import stage2 as stage2_network

GAMMAS = observation.GAMMA_MODES + ("mse",)
"""The observation models of stage 1 (`mse` is fixed with sigma^2 = 1/2)."""

STAGE2_GAMMAS = ("computed", "learned")
XLA_CHOICES = ("auto", "on", "off")
STAGES = ("1", "2", "both")
DISTRIBUTE_CHOICES = ("none", "data")


def option(default, help, type=None, choices=None, on_command_line=True):  # noqa: A002
    """A dataclass field with its command-line metadata (argparse's help,
    type and choices)."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "type": type, "choices": choices, "cli": on_command_line},
    )


@dataclasses.dataclass
class RunConfig:
    """Every option of a run (config.json, in this order)."""

    # -- data
    dataset: str = option(None, "dataset name (see kvae.data.DATASETS)", on_command_line=False)
    data_dir: str | None = option(
        None, "tfds data folder, or a folder of idx files (also KVAE_DATA_DIR)", type=str
    )
    image_size: int = option(64, "imagefolder side", type=cli.positive_int)
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
    kl_weight: float = option(
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
    net_config: dict = option(
        None, "the network's options (see add_arguments)", on_command_line=False
    )
    latent_dim: int = option(64, "latent dimensions of stage 1 (and 2)", type=cli.positive_int)
    second_dim: int = option(
        stage2_network.DEFAULTS["second_dim"], "stage-2 width", type=cli.positive_int
    )
    second_depth: int = option(
        stage2_network.DEFAULTS["second_depth"], "stage-2 depth", type=cli.positive_int
    )
    # -- the schedule
    batch_size: int = option(64, "examples per batch", type=cli.positive_int)
    steps_per_epoch: int | None = option(
        None, "batches per epoch (default: one pass, remainder dropped)", type=cli.positive_int
    )
    epochs: int = option(400, "stage-1 epochs", type=cli.positive_int)
    lr: float = option(1e-4, "stage-1 learning rate", type=cli.positive_float)
    lr_epochs: int = option(
        150,
        "multiply the lr by --lr-fac every this many epochs (0: never)",
        type=cli.non_negative_int,
    )
    lr_fac: float = option(0.5, "the stage-1 learning-rate factor", type=cli.positive_float)
    epochs2: int = option(800, "stage-2 epochs", type=cli.positive_int)
    lr2: float = option(1e-4, "stage-2 learning rate", type=cli.positive_float)
    lr_epochs2: int = option(300, "stage-2 --lr-epochs", type=cli.non_negative_int)
    lr_fac2: float = option(0.5, "stage-2 --lr-fac", type=cli.positive_float)
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


FIELDS = tuple(field.name for field in dataclasses.fields(RunConfig))
"""Every key of a resolved configuration (config.json), in order."""


def defaults():
    """The default value of every field, as a dict (net_config empty)."""
    values = {field.name: field.default for field in dataclasses.fields(RunConfig)}
    values["net_config"] = {}
    return values


def complete(saved):
    """A saved config.json with the fields it predates filled with their
    defaults (e.g. min_sigma, added after the first runs), so old runs
    resume."""
    try:
        saved = observation.check_removed_options(dict(saved))
    except ValueError as error:
        raise cli.UsageError(str(error)) from error
    return {**defaults(), **saved}


def network_options():
    """{option: (networks that take it)} for the stage-1 networks, from the
    networks' own DEFAULTS."""
    options = {}
    for net in networks.STAGE1_NETWORKS:
        for key in networks.defaults(net):
            options.setdefault(key, []).append(net)
    return {key: tuple(nets) for key, nets in options.items()}


def add_arguments(parser):
    """Add an option for every command-line field of RunConfig, and for
    every network option, to an argparse parser (defaults None: not given)."""
    group = parser.add_argument_group("run configuration (defaults: the dataset's recipe)")
    for field in dataclasses.fields(RunConfig):
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
