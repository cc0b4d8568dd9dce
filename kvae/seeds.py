"""How every random stream in kvae is derived from the user's seed.

Two kinds of randomness, kept apart on purpose:

- **Inference draws** (generation, sampled reconstructions, the ELBO's eps,
  the HTTP service): NumPy generators, `generator(seed)`. A request or call
  owns its generator, so its numbers never depend on what else was computed
  in the same batch, on the Keras backend, or on the service's batching.
  The order in which one generator is read is the generation protocol
  (`kvae.generation`).
- **Training draws** (the eps of z = mu + sigma * eps inside the train step,
  batch order): Keras's in-graph `SeedGenerator` and the training stream's
  per-pass NumPy generators,
  seeded by the functions below, so that a resumed run continues its
  streams where a fresh run would be.

Every derived seed is written here once; the callers name the stream.
"""

import numpy as np

GENERATION_BATCH_STRIDE = 7919
"""Evaluation draws generated batch b from seed + 7919 (b + 1): a prime
stride keeps those seeds apart from the reconstructions' seed + b."""


def generator(seed):
    """The NumPy generator of one call or request: `seed` an int >= 0, an
    existing `np.random.Generator` (returned as it is), or None (fresh OS
    entropy: not reproducible)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def standard_normal(rng, shape):
    """float32 draws from N(0, I) of `shape`, read from `rng` in C order
    (the same numbers whatever the shape's factorisation, e.g. (B, H, W, C)
    or (B, H * W * C))."""
    return rng.standard_normal(shape, dtype=np.float32)


# -- training streams -------------------------------------------------------------


def stage_model_seed(seed, stage):
    """The seed of a stage: `keras.utils.set_random_seed` before its
    model's weights are built, the model's SeedGenerator (the eps of its
    train steps) and its training stream (`training_pass_seed`). `seed` for
    stage 1, `seed + 1` for stage 2. A stage's streams are functions of it
    alone, so a run resumed anywhere trains what an uninterrupted one trains."""
    return seed + (0 if stage == 1 else 1)


def training_pass_seed(seed, number):
    """The generator of pass `number` of a stage's training stream: its
    permutation (and synthetic points, stage-2 eps). A function of the pass
    alone, so a resumed run reads the batches of an uninterrupted one."""
    return [seed, 1, number]


def validation_latents_seed(seed):
    """The one fixed draw of z = mu + sigma * eps for stage 2's validation
    latents."""
    return [seed, 2]


# -- evaluation streams ------------------------------------------------------------


def reconstruction_batch_seed(seed, batch_index):
    """The eps of sampled reconstructions (and of the ELBO) of batch
    `batch_index` in an evaluation pass."""
    return seed + batch_index


def generation_batch_seed(seed, batch_index):
    """The generator seed of generated batch `batch_index` in an
    evaluation (GEN-1 and GEN-2 alike)."""
    return seed + GENERATION_BATCH_STRIDE * (batch_index + 1)


def picture_row_seed(seed, row):
    """The pixel noise of row `row` of the ancestral-samples picture."""
    return seed + row


def latent_scale_seed(draws):
    """The seed of the draws that estimate the latent normalisation scale
    (a fixed seed: the scale is a property of the model)."""
    return draws
