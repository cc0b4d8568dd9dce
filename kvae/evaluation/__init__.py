"""Evaluation as evaluators, in the manner of big_vision's: one small module
per family of metrics, each returning its numbers with the words that say
how they were measured; `evaluate` loops over them and writes both into one
record (the metrics.json of `python -m kvae.evaluate`).

    from kvae import evaluation
    record = evaluation.evaluate(model, test_images, "fashion_mnist", out="eval/")
    record["mse"], record["protocol"]["mse"]

- `reconstruction`: MSE from a sampled z and from mu;
- `likelihood`: ELBO, bits per dimension, the importance-weighted bound;
- `latents`: the variance law, inactive latents, reconstruction gain, stage 2;
- `frechet`: FD-fmnist and the FID of the papers' Inception graph;
- `pictures`: the PNGs (with `out`).

Each evaluator module has `run(context) -> (numbers, words)` and `CARD`, the
numbers a zoo card repeats with their names (`card_metrics`, which the zoo's
cards and README table read); `prepare(context)`, when present, runs before
any pass (the FID network is found first). The passes several evaluators
share (the posterior, the sampled reconstructions, the generated sets) are
computed once (`context.Context`).
"""

import time

import keras

import kvae
from kvae import devices, features
from kvae.config import FULL_EVALUATION
from kvae.errors import EvaluationError
from kvae.evaluation import frechet, latents, likelihood, pictures, reconstruction
from kvae.evaluation.context import Context, Options, Progress, generated_sets
from kvae.evaluation.examples import load_examples
from kvae.two_stage import TwoStageVAE

EVALUATORS = (reconstruction, likelihood, latents, frechet)
"""The evaluators of a full evaluation, in the order they run."""

__all__ = [
    "EVALUATORS",
    "FULL_EVALUATION",
    "Context",
    "Options",
    "Progress",
    "card_metrics",
    "evaluate",
    "generated_sets",
    "load_examples",
]


def card_metrics():
    """{key: name} of the numbers a zoo card repeats, from every evaluator."""
    return {key: name for evaluator in EVALUATORS for key, name in evaluator.CARD.items()}


def evaluate(model, real, dataset, out=None, evaluators=EVALUATORS, progress=None, **options):
    """Evaluate a model on real examples; return the record (numbers, and the
    words of each under "protocol").

    Args:
        model: a `kvae.TwoStageVAE` (its `latent_noise` decides the GEN-2
            protocol) or a `kvae.VAE` (one stage).
        real: the examples, (N, *data_shape), uint8 images or float data.
        dataset: the dataset's name, for the protocol's words.
        out: a folder for the pictures, or None for none.
        evaluators: the evaluator modules to run (`EVALUATORS`).
        progress: a callable taking a message, or None for `Progress()`.
        **options: `Options` (split, seed, batch_size, iwae, fid, inception,
            fid_protocol, statistics_cache, normalize_latents, temperature,
            gain_images).

    Raises:
        EvaluationError: examples of another shape than the model's, latent
            normalisation without a stage 2, fid="on" without the network.
    """
    options = Options(**options)
    if options.statistics_cache == "auto":
        options.statistics_cache = features.default_statistics_cache()
    model = _prepared_model(model, options.normalize_latents)
    context = Context(model, real, dataset, options, progress or Progress())
    if tuple(real.shape[1:]) != context.shape:
        raise EvaluationError(
            f"{dataset} examples have shape {real.shape[1:]}, the model takes {context.shape}",
            argument="dataset",
        )
    keras.utils.set_random_seed(options.seed)
    for evaluator in evaluators:
        if hasattr(evaluator, "prepare"):
            evaluator.prepare(context)
    record = _header(context)
    words = _common_words(context)
    for evaluator in evaluators:
        numbers, evaluator_words = evaluator.run(context)
        record.update(numbers)
        words.update(evaluator_words)
    record["protocol"] = words
    if out is not None:
        context.progress("pictures")
        record["pictures"] = pictures.draw(context, out)
    return record


def _prepared_model(model, normalize_latents):
    """The model as a TwoStageVAE, with the latent normalisation scale when
    asked for."""
    if not isinstance(model, TwoStageVAE):
        model = TwoStageVAE(model)
    if not normalize_latents:
        return model
    if model.stage2 is None:
        raise EvaluationError(
            "normalize_latents needs a model with a stage 2", argument="normalize_latents"
        )
    return TwoStageVAE(
        model.stage1,
        model.stage2,
        model.latent_noise,
        model.estimate_latent_scale(),
        model.name,
        model.card,
    )


def _header(context):
    stage1 = context.stage1
    return {
        "kvae_version": _version(),
        "backend": keras.backend.backend(),
        "device": devices.device_name(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "dataset": context.dataset,
            "data_shape": list(context.shape),
            "latent_dim": stage1.latent_dim,
            "gamma_mode": stage1.gamma_mode,
            "gamma": stage1.gamma(),
            "min_sigma": stage1.min_sigma,
            "kl_weight": stage1.kl_weight,
        },
    }


def _common_words(context):
    options = context.options
    return {
        "split": options.split,
        "num_images": context.count,
        "examples": f"the first {context.count} examples of the {context.dataset} "
        f"{options.split} split, in the dataset's order",
        "seed": options.seed,
        "random_draws": "a NumPy generator per batch (kvae.seeds): reconstruction and ELBO "
        "batch b from seed + b, generated batches as the generation words say, read in the "
        "order of the generation protocol (kvae.generation)",
    }


def _version():
    return kvae.__version__
