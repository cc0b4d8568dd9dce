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
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from kvae import cli, data, devices, files, loader, runs, seeds
from kvae.cli import EXIT_BAD_INPUT, UsageError
from kvae.losses import INACTIVE_THRESHOLD
from kvae.two_stage import TwoStageVAE

PICTURE_COLUMNS = 10
FULL_EVALUATION = 10000
"""Examples of the split, and generated examples per set: the originals' protocol."""


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
        config = dict(model.card.get("config") or {})
        loaded = model.card["provenance"]["files"]
        records = {
            key: (loaded[key]["path"], loaded[key]["sha256"]) if key in loaded else None
            for key in ("stage1", "stage2")
        }
    dataset = args.dataset or config.get("dataset")
    if dataset is None:
        raise UsageError(f"no config.json beside {source}; give --dataset")
    config = {**config, "dataset": dataset}
    if args.data_dir is not None:
        config["data_dir"] = str(args.data_dir)
    return config, model, records


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
        config_file = source.parent / "config.json"
        config = {}
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text())
            except (OSError, ValueError) as error:
                raise UsageError(f"cannot read {config_file}: {error}") from error
        stage1, stage2 = source, args.stage2
    if stage2 is not None and not Path(stage2).is_file():
        raise UsageError(f"--stage2 {stage2} does not exist")
    return config, {"stage1": Path(stage1), "stage2": Path(stage2) if stage2 else None}


def load_model(spec):
    """`kvae.load(spec)` for inference; any failure is a UsageError."""
    try:
        return loader.load(spec, compile=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file ends the same way
        raise UsageError(f"cannot load {spec}: {type(error).__name__}: {error}") from error


def load_examples(config, split, count, shape):
    """The first `count` examples of the split, checked against the model."""
    try:
        examples = data.load_split(
            config["dataset"],
            split,
            config.get("data_dir"),
            image_size=config.get("image_size") or (shape[0] if len(shape) == 3 else 64),
            dim=config.get("dim") or (shape[0] if len(shape) == 1 else 8),
            radius=config.get("radius") or 1.0,
            seed=config.get("seed") or 0,
            count=count,
        )
    except ValueError as error:
        raise UsageError(str(error)) from error
    if tuple(examples.shape[1:]) != tuple(shape):
        raise UsageError(
            f"{config['dataset']} examples have shape {examples.shape[1:]}, the "
            f"model takes {tuple(shape)}"
        )
    return examples[:count]


# -- the evaluation -------------------------------------------------------------------


class Progress:
    def __init__(self):
        self.started = time.time()

    def __call__(self, message):
        print(f"[{time.time() - self.started:7.1f} s] {message}", flush=True)


def generated_sets(model, count, seed, temperature, batch_size):
    """The generated examples: GEN-1 (stage-1 decoder means of z ~ N(0, T^2 I))
    and GEN-2 (two-stage decoder means), `count` each, in batches of
    `batch_size`; batch b follows the generation protocol with the seed
    `seeds.generation_batch_seed(seed, b)`."""
    sets = {}
    for stage in model.stages:
        sets[f"gen{stage}"] = np.concatenate(
            [
                model.generate(
                    min(batch_size, count - start),
                    mode="mean",
                    stage=stage,
                    seed=seeds.generation_batch_seed(seed, index),
                    temperature=temperature,
                )
                for index, start in enumerate(range(0, count, batch_size))
            ]
        )
    return sets


def frechet_distances(extractor, real, fakes, progress, label, context, cache_dir):
    """{name: distance} of each fake set against the real set on `extractor`'s
    features; the real statistics come from `features.real_statistics`
    (cached under `context` in `cache_dir`, None for no cache)."""
    from kvae import features, metrics

    progress(f"{label}: statistics of {len(real)} real images")
    real_statistics, cached = features.real_statistics(extractor, real, context, cache_dir)
    if cached:
        progress(f"{label}: real statistics read from {cache_dir}")
    distances = {}
    for name, images in fakes.items():
        progress(f"{label}: features of {len(images)} {name} images")
        fake_statistics = metrics.gaussian_statistics(extractor(images, generated=True))
        distances[name] = round(metrics.frechet_distance(*real_statistics, *fake_statistics), 6)
    return distances


def evaluate(
    model,
    real,
    dataset,
    out=None,
    split="test",
    seed=0,
    batch_size=250,
    iwae=1,
    fid="auto",
    inception=None,
    fid_protocol=None,
    statistics_cache="auto",
    normalize_latents=False,
    temperature=1.0,
    gain_images=1000,
    progress=None,
):
    """Evaluate a model on real examples; return the metrics dict.

    Args:
        model: a `kvae.TwoStageVAE` (its `latent_noise` decides the GEN-2
            protocol) or a `kvae.VAE` (one stage).
        real: the examples, (N, *data_shape), uint8 images or float data.
        dataset: the dataset's name, for the protocol's words.
        out: a folder for the pictures, or None for none.
        split: the split `real` came from, for the protocol's words.
        seed: seeds every random draw (`kvae.seeds`).
        batch_size: examples per batch of every pass.
        iwae: draws of z per example; > 1 adds the importance-weighted bound.
        fid: "auto" (when the Inception archive is found), "on" (fail
            without it: UsageError) or "off".
        inception: the inception-2015-12-05.tgz path, or None for the Keras
            cache (`kvae.inception`).
        fid_protocol: "dai2019" or "asperti2020"; None: the protocol of the
            recipe in the model's card (`recipes.fid_protocol`), else dai2019.
        statistics_cache: a folder for the real images' feature statistics,
            "auto" for the Keras cache's, or None for no cache.
        normalize_latents: estimate and use the latent normalisation scale.
        temperature: the standard deviation of the prior draws.
        gain_images: examples for the per-latent reconstruction gain.
        progress: a callable taking a message, or None for `Progress()`.
    """
    import keras

    from kvae import features, metrics, recipes
    from kvae.inception import InceptionGraph, InceptionUnavailable

    progress = progress or Progress()
    if statistics_cache == "auto":
        statistics_cache = features.default_statistics_cache()
    if not isinstance(model, TwoStageVAE):
        model = TwoStageVAE(model)
    stage1, stage2 = model.stage1, model.stage2
    if normalize_latents:
        if stage2 is None:
            raise UsageError("--normalize-latents needs a stage 2")
        model = TwoStageVAE(
            stage1,
            stage2,
            model.latent_noise,
            model.estimate_latent_scale(),
            model.name,
            model.card,
        )
    shape = tuple(stage1.data_shape)
    if tuple(real.shape[1:]) != shape:
        raise UsageError(f"{dataset} examples have shape {real.shape[1:]}, the model takes {shape}")
    images = len(shape) == 3
    num_dims = int(np.prod(shape))
    keras.utils.set_random_seed(seed)
    real_float = data.as_float(real)
    count = len(real)
    fid_network, fid_missing = None, None
    if fid_protocol is None:
        fid_protocol = recipes.fid_protocol((model.card or {}).get("config") or {})
    if fid != "off" and images:
        try:
            fid_network = InceptionGraph(inception, fid_protocol)
        except InceptionUnavailable as error:
            if fid == "on":
                raise UsageError(str(error)) from error
            fid_missing = str(error)
    result = {
        "kvae_version": _version(),
        "backend": keras.backend.backend(),
        "device": devices.device_name(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "dataset": dataset,
            "data_shape": list(shape),
            "latent_dim": stage1.latent_dim,
            "gamma_mode": stage1.gamma_mode,
            "gamma": stage1.gamma(),
            "min_sigma": stage1.min_sigma,
            "kl_weight": stage1.kl_weight,
        },
    }

    progress("encoding")
    mu, log_sigma = metrics.encode(stage1, real, batch_size)
    progress("reconstructions")
    reconstructions = metrics.reconstruct(
        stage1, real, sample=True, seed=seed, batch_size=batch_size
    )
    reconstructions_from_mu = metrics.reconstruct(stage1, real, batch_size=batch_size)
    result["mse"] = float(np.mean(metrics.squared_error(real, reconstructions)))
    result["mse_from_mu"] = float(np.mean(metrics.squared_error(real, reconstructions_from_mu)))

    progress(f"ELBO ({iwae} draw{'s' if iwae > 1 else ''} of z per example)")
    bound = metrics.elbo(stage1, real, samples=iwae, seed=seed, batch_size=batch_size)
    elbo_nats = float(bound["elbo"].mean())
    result.update(
        {
            "elbo_nats": elbo_nats,
            "elbo_nats_sem": float(bound["elbo"].std() / math.sqrt(count)),
            "bits_per_dim": metrics.bits_per_dim(-elbo_nats, num_dims),
            "elbo_bits_per_dim": metrics.bits_per_dim(elbo_nats, num_dims),
            "log_likelihood_nats": float(bound["log_likelihood"].mean()),
            "kl_nats": float(bound["kl"].mean()),
        }
    )
    if "iwae" in bound:
        iwae_nats = float(bound["iwae"].mean())
        result.update(
            {
                "iwae_nats": iwae_nats,
                "iwae_bits_per_dim": metrics.bits_per_dim(-iwae_nats, num_dims),
            }
        )

    progress("variance law, inactive latents, reconstruction gain")
    law = metrics.variance_law(mu, log_sigma)
    inactive = metrics.inactive_latents(law["mean_sigma2"])
    gain_count = min(gain_images, count)
    gains = metrics.reconstruction_gain(stage1, real[:gain_count], mu[:gain_count], batch_size)
    result.update(
        {
            "variance_law": float(law["law"].mean()),
            "variance_law_mean_sigma": float(law["law_mean_sigma"].mean()),
            "inactive_latents": int(inactive.sum()),
            "active_latents": int((~inactive).sum()),
            "latents": [
                {
                    "index": j,
                    "var_mu": float(law["var_mu"][j]),
                    "mean_sigma2": float(law["mean_sigma2"][j]),
                    "mean_sigma": float(law["mean_sigma"][j]),
                    "variance_law": float(law["law"][j]),
                    "inactive": bool(inactive[j]),
                    "reconstruction_gain": float(gains[j]),
                }
                for j in range(len(inactive))
            ],
        }
    )

    if stage2 is not None:
        z = model.sample_posterior(mu, log_sigma, seed)
        stage2_law = metrics.variance_law(*metrics.encode(stage2, z, batch_size))
        result["stage2"] = {
            "gamma_mode": stage2.gamma_mode,
            "gamma": stage2.gamma(),
            "variance_law": float(stage2_law["law"].mean()),
            "inactive_latents": int(metrics.inactive_latents(stage2_law["mean_sigma2"]).sum()),
            "latent_noise": model.latent_noise,
            "latent_scale": model.latent_scale,
        }

    progress("generation")
    generated = generated_sets(model, count, seed, temperature, batch_size)
    fakes = {"rec": reconstructions, **generated}

    context = {"dataset": dataset, "split": split, "count": count}
    if images and shape == features.FMNIST_SHAPE:
        extractor = features.FashionMnistFeatures()
        result["fd_fmnist"] = {
            **frechet_distances(
                extractor, real_float, fakes, progress, "FD-fmnist", context, statistics_cache
            ),
            "protocol": extractor.protocol(count),
        }
    if not images:
        result["fid"] = {"available": False, "reason": "FID is defined for images only"}
    elif fid == "off":
        result["fid"] = {"available": False, "reason": "--fid off"}
    elif fid_network is None:
        result["fid"] = {"available": False, "reason": fid_missing}
    else:
        result["fid"] = {
            **frechet_distances(
                fid_network, real, fakes, progress, "FID", context, statistics_cache
            ),
            "protocol": {
                **fid_network.protocol(count),
                "real_reference": f"the first {count} examples of {dataset} {split}",
            },
        }

    result["protocol"] = protocol(
        dataset,
        split,
        seed,
        temperature,
        iwae,
        gain_images,
        count,
        num_dims,
        model,
        normalize_latents,
    )
    if out is not None:
        progress("pictures")
        result["pictures"] = draw_pictures(
            out, stage1, real_float, reconstructions, generated, law["mean_sigma2"], inactive, seed
        )
    return result


def evaluate_command(args, progress=None):
    """What `python -m kvae.evaluate` computes: the models and examples that
    `args` name, evaluated into the metrics.json object."""
    from kvae import recipes

    config, model, records = resolve_source(args)
    progress = progress or Progress()
    progress(f"loading {args.num_images} {args.split} examples of {config['dataset']}")
    real = load_examples(config, args.split, args.num_images, model.data_shape)
    result = {"command": "python -m kvae.evaluate " + " ".join(shlex.quote(a) for a in args.argv)}
    result.update(
        evaluate(
            model,
            real,
            config["dataset"],
            out=args.out,
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
            progress=progress,
        )
    )
    for key, record in records.items():
        result["model"][key], result["model"][f"{key}_sha256"] = record or (None, None)
    return result


def protocol(
    dataset, split, seed, temperature, iwae, gain_images, count, num_dims, model, normalize_latents
):
    """How every number was obtained, in words, for metrics.json."""
    generation = f"GEN-1: stage-1 decoder means at z ~ N(0, {temperature:g}^2 I); "
    if model.stage2 is not None:
        generation += (
            f"GEN-2: u ~ N(0, {temperature:g}^2 I) -> stage-2 decoder mean"
            f"{' + gamma_z * eps' if model.latent_noise else ''}"
            f"{' -> scaled to unit average std' if normalize_latents else ''}"
            " -> stage-1 decoder mean; "
        )
    return {
        "split": split,
        "num_images": count,
        "examples": f"the first {count} examples of the {dataset} {split} "
        "split, in the dataset's order",
        "seed": seed,
        "random_draws": "a NumPy generator per batch (kvae.seeds): reconstruction and ELBO "
        "batch b from seed + b, generated batch b from seed + "
        f"{seeds.GENERATION_BATCH_STRIDE} (b + 1), read in the order of the "
        "generation protocol (kvae.generation)",
        "reconstruction": "decoder mean at z = mu + sigma * eps (sampled, as the originals); "
        "mse_from_mu uses z = mu",
        "mse": "mean over examples and dimensions of (x - reconstruction)^2, x in [0, 1], "
        "reconstructions not clipped",
        "elbo": f"mean over examples of log p(x|z) - KL(q(z|x) || N(0, I)), KL weight 1, "
        f"{iwae} draw(s) of z, gamma terms and 1/2 log 2 pi included; a "
        f"continuous density on data in [0, 1], no dequantisation; "
        f"bits_per_dim = -elbo_nats / ({num_dims} ln 2), elbo_bits_per_dim = its "
        "negative (the sign of Berger & Sebag's Table 2)",
        "variance_law": "mean over latents of Var_n(mu) + mean_n sigma^2 (Asperti & Trentin "
        "Eq. 7); variance_law_mean_sigma: Var_n(mu) + mean_n sigma, the "
        "original BalancingVAE code's variant",
        "inactive_latents": "latents with mean_n sigma^2 >= 0.8 (Asperti & Trentin, footnote 3)",
        "reconstruction_gain": f"per latent, on the first {min(gain_images, count)} "
        "examples: MSE of the reconstruction from mu with that latent "
        "set to 0, minus the MSE from mu (Asperti 2019, Sec. 5)",
        "generation": generation + f"{count} examples per set, decoder means, not clipped",
        "frechet_distances": "rec / gen1 / gen2 against the same real examples; images "
        "clipped to [0, 1]; covariance unbiased (np.cov)",
    }


def draw_pictures(out, stage1, real, reconstructions, generated, mean_sigma2, inactive, seed):
    """The PNGs of an evaluation; returns {name: file name}."""
    from kvae import images

    out = Path(out)
    vectors = len(stage1.data_shape) == 1
    pictures = {}
    columns = PICTURE_COLUMNS
    z = stage1.sample_prior(columns if not vectors else 500, seed=seed)
    means = stage1.generate_from(z, mode="mean")
    draws = [
        stage1.generate_from(z, mode="sample", seed=seeds.picture_row_seed(seed, row))
        for row in range(1 if vectors else 3)
    ]
    if vectors:
        shown = real[:500]
        images.save_scatter(
            {"data": shown, "reconstruction": reconstructions[:500]}, out / "reconstructions.png"
        )
        images.save_scatter(
            {"data": shown, "sample": draws[0], "mean": means}, out / "samples_ancestral.png"
        )
        images.save_scatter(
            {"data": shown, "mean": generated["gen1"][:500]}, out / "samples_mean.png"
        )
        if "gen2" in generated:
            images.save_scatter(
                {"data": shown, "mean": generated["gen2"][:500]}, out / "samples_stage2.png"
            )
    else:
        pairs = []
        for row in range(5):
            window = slice(row * columns, (row + 1) * columns)
            pairs += [real[window], reconstructions[window]]
        images.save_grid(np.concatenate(pairs), out / "reconstructions.png", columns, scale=2)
        images.save_grid(generated["gen1"][:100], out / "samples_mean.png", columns, scale=2)
        images.save_grid(
            np.concatenate([means, *draws]), out / "samples_ancestral.png", columns, scale=2
        )
        if "gen2" in generated:
            images.save_grid(generated["gen2"][:100], out / "samples_stage2.png", columns, scale=2)
    images.save_bar_plot(
        mean_sigma2,
        out / "latent_variance.png",
        highlighted=np.flatnonzero(inactive),
        threshold=INACTIVE_THRESHOLD,
        title=f"mean sigma^2 per latent (0..{len(mean_sigma2) - 1})\n"
        f"red: inactive (>= {INACTIVE_THRESHOLD}), {int(inactive.sum())} of "
        f"{len(inactive)}; line: {INACTIVE_THRESHOLD}; top: "
        f"{max(1.0, float(np.max(mean_sigma2))):.2f}",
    )
    for name in (
        "reconstructions",
        "samples_mean",
        "samples_ancestral",
        "samples_stage2",
        "latent_variance",
    ):
        if (out / f"{name}.png").is_file():
            pictures[name] = f"{name}.png"
    return pictures


def _version():
    import kvae

    return kvae.__version__


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        args.out.mkdir(parents=True, exist_ok=True)
        result = evaluate_command(args)
    except (UsageError, data.DataError) as error:
        print(f"kvae.evaluate: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
