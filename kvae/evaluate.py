"""Evaluate a trained (two-stage) VAE:
`python -m kvae.evaluate RUN_DIR_OR_CHECKPOINT --out DIR [options]`.

Examples:
  python -m kvae.evaluate runs/fashion_mnist-computed --out eval/fmnist
  python -m kvae.evaluate runs/celeba-computed --out eval/celeba --fid on
  python -m kvae.evaluate model.keras --dataset fashion_mnist --stage2 stage2.keras --out eval/m

RUN_DIR_OR_CHECKPOINT is a run folder of `kvae.train` (its config.json names
the dataset; stage1.keras and, when trained, stage2.keras are evaluated) or a
stage-1 `.keras` file (with --dataset unless a config.json lies beside it,
and --stage2 for the second stage).

Writes DIR/metrics.json (every metric with its protocol and the command) and
PNG pictures: reconstructions.png (originals above reconstructions),
samples_mean.png, samples_ancestral.png (decoder means above draws from
p(x|z)), samples_stage2.png and latent_variance.png (mean sigma^2 per latent,
inactive ones in red). metrics.json is written last.

FID is the papers' metric: TensorFlow's Inception graph of 2015-12-05, fed as
Dai & Wipf (--fid-protocol dai2019) or Asperti & Trentin (asperti2020) did;
the default is the protocol of the model's recipe. It needs the archive
(`python -m kvae.features download-inception`, or --inception PATH); without
it metrics.json says why there is no FID. The real images' statistics are
cached in the Keras cache (--fid-cache off to recompute).
28x28x1 models also get FD-fmnist, on the features of a classifier shipped
with kvae. Exit codes: 0 done, 2 bad input.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

from kvae import cli, files, presets, quiet, recipes, runs
from kvae.cli import UsageError
from kvae.config import FULL_EVALUATION, RunConfig
from kvae.errors import KvaeError

# kvae.evaluation, kvae.loader and kvae.two_stage load Keras (and so
# TensorFlow): they are imported where a model is loaded, so that --help
# and a mistaken argument answer at once (issue 34).


def build_parser():
    parser = cli.Parser(
        prog="python -m kvae.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", help="a run folder or a stage-1 .keras file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--num-images",
        type=cli.positive_int,
        default=FULL_EVALUATION,
        help="examples of the split, and generated examples per set "
        "(default 10000, the originals' protocol)",
    )
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test")
    parser.add_argument("--dataset", help="the dataset, for a checkpoint outside a run folder")
    parser.add_argument("--data-dir", type=Path, help="as kvae.train's --data-dir")
    parser.add_argument("--stage2", type=Path, help="the stage-2 .keras file (with a checkpoint)")
    parser.add_argument(
        "--best",
        action="store_true",
        help="evaluate a run folder's stage*_best.keras (default: the latest)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds every random draw (default 0)")
    parser.add_argument("--batch-size", type=cli.positive_int, default=250)
    parser.add_argument(
        "--iwae",
        type=cli.positive_int,
        default=1,
        metavar="K",
        help="draws of z per example; K > 1 also reports the importance-weighted bound (default 1)",
    )
    parser.add_argument(
        "--fid",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto: FID when the Inception archive is found; on: fail without it; off: skip",
    )
    parser.add_argument(
        "--inception",
        type=Path,
        help="the inception-2015-12-05.tgz archive (default: the Keras cache)",
    )
    parser.add_argument(
        "--fid-protocol",
        choices=("dai2019", "asperti2020"),
        help="how images are fed to the FID network (default: the model's recipe's paper)",
    )
    parser.add_argument(
        "--fid-cache",
        choices=("on", "off"),
        default="on",
        help="keep the real images' FID statistics in the Keras cache (default on)",
    )
    parser.add_argument(
        "--latent-noise",
        choices=("auto", "on", "off"),
        default="auto",
        help="add gamma_z noise to stage-2 latents (Dai & Wipf) or not "
        "(Asperti & Trentin); auto: on when stage 2 learns its gamma",
    )
    parser.add_argument(
        "--normalize-latents",
        action="store_true",
        help="scale stage-2 latents to unit average std (Asperti & Trentin Sec. IV-B)",
    )
    parser.add_argument(
        "--temperature",
        type=cli.non_negative_float,
        default=1.0,
        help="std of the prior draws for generation (default 1)",
    )
    parser.add_argument(
        "--gain-images",
        type=cli.positive_int,
        default=1000,
        help="examples for the per-latent reconstruction gain (default 1000)",
    )
    return parser


# -- what to evaluate ----------------------------------------------------------------


def resolve_source(args):
    """(config, model, files) that the command line names: the training
    configuration, the `kvae.TwoStageVAE` to evaluate and {"stage1",
    "stage2"} -> (path, sha256) of its files (None for a missing stage).

    The source is a run folder of `kvae.train` (its latest or, with --best,
    best checkpoints), a stage-1 `.keras` file (with --stage2), or anything
    `kvae.load` reads as a preset: a preset folder, a zoo name or an
    hf:// handle (the training configuration is then the card's)."""
    from kvae.two_stage import TwoStageVAE

    source = args.source
    latent_noise = {"on": True, "off": False}.get(args.latent_noise)
    if runs.is_run(source) or Path(source).is_file():
        config, paths = _source_files(args)
        stages = [load_model(paths[key]) if paths[key] else None for key in ("stage1", "stage2")]
        try:
            model = TwoStageVAE(*stages, latent_noise=latent_noise)
        except ValueError as error:
            raise UsageError(
                f"{paths['stage2']} does not fit {paths['stage1']}: {error}"
            ) from error
        records = {
            key: (str(path), files.digest(path)) if path else None for key, path in paths.items()
        }
    else:
        if args.best or args.stage2 is not None:
            raise UsageError("--best and --stage2 apply to a run folder or a .keras file")
        model = load_model(source)
        if not isinstance(model, TwoStageVAE):
            raise UsageError(f"{source} is not a preset, a run folder or a .keras file")
        if latent_noise is not None:
            model = TwoStageVAE(
                model.stage1, model.stage2, latent_noise, model.latent_scale, model.name, model.card
            )
        config = RunConfig.from_json(model.card.get("config") or {})
        loaded = model.card["provenance"]["files"]
        records = {
            key: (loaded[key]["path"], loaded[key]["sha256"]) if key in loaded else None
            for key in ("stage1", "stage2")
        }
    dataset = args.dataset or config.dataset
    if dataset is None:
        raise UsageError(f"no config.json beside {source}; give --dataset")
    data_dir = str(args.data_dir) if args.data_dir is not None else config.data_dir
    return config.replace(dataset=dataset, data_dir=data_dir), model, records


def _source_files(args):
    """(config, {"stage1": path, "stage2": path or None}) of a run folder or
    a .keras file."""
    source = Path(args.source)
    if runs.is_run(source):
        run = runs.RunFolder(source)
        config = run.read_config()
        stage1, stage2 = run.checkpoint("1", args.best), run.checkpoint("2", args.best)
        if not stage1.is_file():
            raise UsageError(f"{source} has no {stage1.name}; train stage 1 first")
        stage2 = args.stage2 if args.stage2 is not None else (stage2 if stage2.is_file() else None)
    else:
        if args.best:
            raise UsageError("--best selects a run folder's best checkpoints; give the folder")
        config = _beside(source)
        stage1, stage2 = source, args.stage2
    if stage2 is not None and not Path(stage2).is_file():
        raise UsageError(f"--stage2 {stage2} does not exist")
    return config, {"stage1": Path(stage1), "stage2": Path(stage2) if stage2 else None}


def _beside(source):
    """The RunConfig of the config.json beside a .keras file: a run's, or the
    card's of a preset folder; the defaults when there is none."""
    config_file = source.parent / "config.json"
    if not config_file.is_file():
        return RunConfig.from_json({})
    try:
        saved = json.loads(config_file.read_text())
        if presets.is_preset(source.parent):
            saved = (saved.get("card") or {}).get("config") or {}
        return RunConfig.from_json(saved)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {config_file}: {error}") from error


def load_model(spec):
    """`kvae.load(spec)` for inference; any failure is a UsageError."""
    from kvae import loader

    try:
        return loader.load(spec, compile=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file ends the same way
        raise UsageError(f"cannot load {spec}: {type(error).__name__}: {error}") from error


def evaluate_command(args, progress=None):
    """What `python -m kvae.evaluate` computes: the models and examples that
    `args` name, evaluated into the metrics.json object."""
    from kvae import evaluation

    config, model, records = resolve_source(args)
    progress = progress or evaluation.Progress()
    progress(f"loading {args.num_images} {args.split} examples of {config.dataset}")
    real = evaluation.load_examples(config, args.split, args.num_images, model.data_shape)
    result = {"command": "python -m kvae.evaluate " + " ".join(shlex.quote(a) for a in args.argv)}
    result.update(
        evaluation.evaluate(
            model,
            real,
            config.dataset,
            out=args.out,
            progress=progress,
            split=args.split,
            seed=args.seed,
            batch_size=args.batch_size,
            iwae=args.iwae,
            fid=args.fid,
            inception=args.inception,
            fid_protocol=args.fid_protocol or recipes.fid_protocol(config),
            statistics_cache="auto" if args.fid_cache == "on" else None,
            normalize_latents=args.normalize_latents,
            temperature=args.temperature,
            gain_images=args.gain_images,
        )
    )
    for key, record in records.items():
        result["model"][key], result["model"][f"{key}_sha256"] = record or (None, None)
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    flags = cli.option_names(parser)
    try:
        args = parser.parse_args(argv)
        args.argv = argv
        args.out.mkdir(parents=True, exist_ok=True)
        quiet.start_backend()  # TensorFlow's start-up lines held back (KVAE_VERBOSE=1 shows them)
        result = evaluate_command(args)
    except (UsageError, KvaeError) as error:
        return cli.report("kvae.evaluate", error, flags)
    files.write_json(args.out / "metrics.json", result)
    summary = {
        key: result[key]
        for key in ("elbo_nats", "bits_per_dim", "mse", "variance_law", "inactive_latents")
    }
    for key in ("fd_fmnist", "fid"):
        if key in result and "rec" in result[key]:
            summary[key] = {
                name: result[key][name] for name in ("rec", "gen1", "gen2") if name in result[key]
            }
    print(json.dumps(summary))
    print(f"wrote {args.out / 'metrics.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
