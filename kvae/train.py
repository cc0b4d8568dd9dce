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

--help, --dry-run and bad input answer at once: the run configuration is
plain Python, and TensorFlow (or JAX) is imported only to train or to count
parameters (--dry-run --params).
"""

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from kvae import cli, quiet, recipes
from kvae import config as run_config
from kvae.cli import UsageError
from kvae.errors import KvaeError, NonFiniteLoss

EXIT_NON_FINITE = 3
EXIT_INTERRUPTED = 130


def build_parser():
    """The command line: DATASET, an option per run-configuration field and
    network option (`kvae.config.add_arguments`), and the run options."""
    parser = cli.Parser(
        prog="python -m kvae.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", nargs="?", help="dataset name (see above)")
    run_config.add_arguments(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--out", type=Path, help="run folder (default runs/DATASET-GAMMA)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved configuration as JSON; no training, no TensorFlow",
    )
    run.add_argument(
        "--params",
        action="store_true",
        help="with --dry-run: also build the networks and print their parameter counts",
    )
    return parser


_NOT_CONFIG = ("resume", "dry_run", "params", "out")


def given_options(args):
    """The configuration options given on the command line (None = not given)."""
    options = {
        key: value
        for key, value in vars(args).items()
        if key not in _NOT_CONFIG and value is not None
    }
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
        raise UsageError(
            f"--sigma-schedule {path} needs columns epoch and sigma (or gamma): {error}"
        ) from error
    if not schedule or not all(math.isfinite(v) and v > 0 for v in schedule):
        raise UsageError(f"--sigma-schedule {path} needs at least one row of finite sigma > 0")
    return schedule


def resolve_config(args):
    """The `RunConfig` of a fresh run from the command line."""
    if not args.dataset:
        raise UsageError("give a DATASET (or --resume with --out)")
    options = given_options(args)
    options.pop("dataset")
    gamma = options.pop("gamma", run_config.defaults()["gamma"])
    if "sigma_schedule" in options:
        options["sigma_schedule"] = read_sigma_schedule(options["sigma_schedule"])
    return recipes.resolve(args.dataset, gamma, options)


def main(argv=None):
    parser = build_parser()
    flags = cli.option_names(parser)
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        return _main(args)
    except (UsageError, KvaeError) as error:
        return cli.report("kvae.train", error, flags)
    except NonFiniteLoss as error:
        hint = f" ({cli.flag(error.argument)})" if error.argument else ""
        print(f"kvae.train: stopped: {error}{hint}", file=sys.stderr)
        return EXIT_NON_FINITE
    except KeyboardInterrupt:
        print(
            "kvae.train: interrupted; the last finished epoch is saved, continue with --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _main(args):
    continuing = args.resume or args.stage == "2"
    if args.params and not args.dry_run:
        raise UsageError("--params goes with --dry-run")
    if args.dry_run:
        if continuing:
            raise UsageError("--dry-run describes a new run; drop --resume / --stage 2")
        config = resolve_config(args)
        result = {"config": config.to_json()}
        if args.params:
            result["params"] = _training().parameter_counts(config)
        print(json.dumps(result))
        return 0
    if continuing:
        if args.out is None:
            raise UsageError("--resume and --stage 2 need --out (the run folder)")
        _training().resume(args.out, given_options(args), stage2_only=args.stage == "2")
    else:
        _training().train(resolve_config(args), args.out)
    return 0


def _training():
    """`kvae.training`, imported when the command trains (or counts
    parameters): it brings Keras and TensorFlow or JAX, which --help,
    --dry-run and bad input do without (and TensorFlow's start-up chatter,
    which `kvae.quiet` holds back)."""
    quiet.start_backend()
    import kvae.training

    return kvae.training


def train(config, out=None):
    """`kvae.train.train(config, out)`: `kvae.training.train`, the library
    function behind the command."""
    return _training().train(config, out)


if __name__ == "__main__":
    sys.exit(main())
