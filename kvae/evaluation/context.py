"""What every evaluator reads: the model, the real examples, the options,
and the passes several evaluators share, each computed once on first use."""

import dataclasses
import functools
import time

import numpy as np

from kvae import data, metrics, seeds
from kvae.two_stage import TwoStageVAE


class Progress:
    """Progress lines with the seconds since the evaluation started."""

    def __init__(self):
        self.started = time.time()

    def __call__(self, message):
        print(f"[{time.time() - self.started:7.1f} s] {message}", flush=True)


@dataclasses.dataclass
class Options:
    """How an evaluation runs (`kvae.evaluation.evaluate`'s arguments).

    Args:
        split: the split the examples came from, for the protocol's words.
        seed: seeds every random draw (`kvae.seeds`).
        batch_size: examples per batch of every pass.
        iwae: draws of z per example; > 1 adds the importance-weighted bound.
        fid: "auto" (when the Inception archive is found), "on" (an
            EvaluationError without it) or "off".
        inception: the inception-2015-12-05.tgz path, or None for the Keras
            cache (`kvae.inception`).
        fid_protocol: "dai2019" or "asperti2020"; None: the protocol of the
            recipe in the model's card (`kvae.recipes.fid_protocol`).
        statistics_cache: a folder for the real images' feature statistics,
            "auto" for the Keras cache's, or None for no cache.
        normalize_latents: estimate and use the latent normalisation scale.
        temperature: the standard deviation of the prior draws.
        gain_images: examples for the per-latent reconstruction gain.
    """

    split: str = "test"
    seed: int = 0
    batch_size: int = 250
    iwae: int = 1
    fid: str = "auto"
    inception: str | None = None
    fid_protocol: str | None = None
    statistics_cache: object = "auto"
    normalize_latents: bool = False
    temperature: float = 1.0
    gain_images: int = 1000


class Context:
    """The model, the examples and the options of one evaluation, with the
    passes shared by several evaluators as cached properties."""

    def __init__(self, model, real, dataset, options, progress):
        self.model = model
        self.real = real
        self.dataset = dataset
        self.options = options
        self.progress = progress
        self.stage1 = model.stage1
        self.shape = tuple(self.stage1.data_shape)
        self.images = len(self.shape) == 3
        self.count = len(real)
        self.num_dims = int(np.prod(self.shape))

    @functools.cached_property
    def real_float(self):
        return data.as_float(self.real)

    @functools.cached_property
    def posterior(self):
        """(mu, log_sigma) of q(z|x) for every example."""
        self.progress("encoding")
        return metrics.encode(self.stage1, self.real, self.options.batch_size)

    @functools.cached_property
    def reconstructions(self):
        """Decoder means at z = mu + sigma * eps (the originals' reconstructions)."""
        self.progress("reconstructions")
        return metrics.reconstruct(
            self.stage1,
            self.real,
            sample=True,
            seed=self.options.seed,
            batch_size=self.options.batch_size,
        )

    @functools.cached_property
    def generated(self):
        """{"gen1": ..., "gen2": ...} (`generated_sets`)."""
        self.progress("generation")
        return generated_sets(
            self.model,
            self.count,
            self.options.seed,
            self.options.temperature,
            self.options.batch_size,
        )

    @functools.cached_property
    def law(self):
        """The variance law per latent (`kvae.metrics.variance_law`)."""
        return metrics.variance_law(*self.posterior)

    @functools.cached_property
    def inactive(self):
        return metrics.inactive_latents(self.law["mean_sigma2"])


def generated_sets(model, count, seed, temperature, batch_size):
    """The generated examples: GEN-1 (stage-1 decoder means of z ~ N(0, T^2 I))
    and GEN-2 (two-stage decoder means), `count` each, in batches of
    `batch_size`; batch b follows the generation protocol with the seed
    `seeds.generation_batch_seed(seed, b)`."""
    if not isinstance(model, TwoStageVAE):
        model = TwoStageVAE(model)
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
