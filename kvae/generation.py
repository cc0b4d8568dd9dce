"""The seeded generation protocol: how a seed becomes images, written once.

`VAE.generate`, `TwoStageVAE.generate`, `kvae.evaluate`, the zoo and the
HTTP service all run `protocol`, so for one model, seed, n and options they
give the same images, whichever path produced them and however the service
batched the request. All randomness of a call comes from one NumPy
generator (`kvae.seeds.generator(seed)`), read in this order:

1. the prior latents, (n, dim) standard normal draws times the temperature
   (skipped when the caller gives latents);
2. stage 2 only: the gamma_z noise of z ~ N(z_mean(u), gamma_z^2), when the
   model adds it (`latent_noise`);
3. mode "sample" only: the pixel noise of x ~ N(x_mean(z), gamma^2).

Decoding is deterministic (decoder means and log gammas), so it can run
anywhere, batched with other requests: `protocol` is a Python generator
that yields decode requests `(stage, latents)` and receives `(mean,
log_gamma)` NumPy arrays; `run` drives it with a synchronous decoder,
`run_async` with an awaitable one (the service's batcher, serving/batcher.py).

References: ancestral and deterministic sampling, Berger & Sebag 2020
(seed 002) Algorithms 6-7 and Sec. 5.3.4 (alpha); the two-stage sampler,
Dai & Wipf 2019, Sec. 3.2 (gamma_z noise in their code) and Asperti &
Trentin 2020, Sec. IV-B (latent normalisation).
"""

import math

import keras
import numpy as np
from keras import ops

from kvae import devices, losses, seeds

MODES = ("mean", "sample")
"""How a latent becomes an example: the decoder mean (deterministic
sampling, optionally shifted by alpha gammas) or a draw from p(x|z)
(ancestral sampling)."""


def check_options(mode="mean", temperature=1.0, alpha=0.0):
    """Validate the options of a generation; returns (temperature, alpha)
    as floats. Raises ValueError naming the option."""
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {', '.join(MODES)}.")
    temperature, alpha = float(temperature), float(alpha)
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(
            f"temperature must be a finite number >= 0. Received: temperature={temperature!r}"
        )
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite. Received: alpha={alpha!r}")
    if mode == "sample" and alpha != 0.0:
        raise ValueError(
            "alpha shifts the decoder mean (mode='mean'); mode='sample' "
            f"draws from p(x|z) instead. Received: alpha={alpha}"
        )
    return temperature, alpha


def check_count(n):
    """n as an int >= 1, or ValueError."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1. Received: n={n!r}")
    return int(n)


def check_latents(latents, dim):
    """Latents as float32 (n, dim), n >= 1, every number finite."""
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 2 or latents.shape[1] != dim or len(latents) < 1:
        raise ValueError(
            f"z must have shape (n, {dim}) with n >= 1. Received: shape={latents.shape}"
        )
    if not np.isfinite(latents).all():
        raise ValueError("z must hold finite numbers only.")
    return latents


def prior_latents(rng, n, dim, temperature=1.0):
    """Step 1: n latents z ~ N(0, temperature^2 I), float32 (n, dim)."""
    return seeds.standard_normal(rng, (n, dim)) * np.float32(temperature)


def posterior_draw(mu, log_sigma, rng):
    """z = mu + sigma * eps of q(z|x), eps from `rng` (a sampled
    reconstruction, /encode with sample=true), float32 NumPy."""
    mu = np.asarray(mu, np.float32)
    return losses.gaussian_sample(mu, log_sigma, seeds.standard_normal(rng, mu.shape))


def observe(mean, log_gamma, rng, mode="mean", alpha=0.0):
    """Step 3 (and 2): an example from p(.|z) = N(mean, gamma^2): the mean
    shifted by alpha gammas (mode "mean"; alpha 0 returns the mean itself)
    or a draw with noise from `rng` (mode "sample"). Not clipped; float32."""
    mean = np.asarray(mean, np.float32)
    if mode == "sample":
        return losses.gaussian_sample(mean, log_gamma, seeds.standard_normal(rng, mean.shape))
    if alpha == 0.0:
        return mean
    return (mean + np.float32(alpha) * np.exp(np.asarray(log_gamma, np.float32))).astype(np.float32)


def stage1_latents(z_mean, log_gamma_z, rng, latent_noise=False, latent_scale=None):
    """Step 2: the stage-1 latents from stage 2's p(z|u): its mean, plus
    gamma_z * eps when `latent_noise` (Dai & Wipf's code), times
    `latent_scale` when given (Asperti & Trentin's normalisation)."""
    z = observe(z_mean, log_gamma_z, rng, "sample" if latent_noise else "mean")
    if latent_scale is not None:
        z = (z * np.float32(latent_scale)).astype(np.float32)
    return z


def protocol(
    rng,
    dim,
    n=None,
    latents=None,
    mode="mean",
    temperature=1.0,
    alpha=0.0,
    two_stage=False,
    latent_noise=False,
    latent_scale=None,
):
    """The generation protocol as a generator of decode requests.

    Yields `(stage, latents)` (stage 2 first when `two_stage`, then stage
    1) and expects `(mean, log_gamma)` NumPy arrays back; returns the
    examples, float32, shaped as the stage-1 decoder's means.

    Args:
        rng: the call's NumPy generator (`kvae.seeds.generator(seed)`).
        dim: the length of the first latents (stage 2's when two_stage).
        n: how many examples to draw from the prior; or
        latents: given first latents (n, dim) instead.
        mode, temperature, alpha: see `check_options`.
        two_stage: decode through stage 2 first.
        latent_noise, latent_scale: see `stage1_latents`.
    """
    temperature, alpha = check_options(mode, temperature, alpha)
    if latents is None:
        latents = prior_latents(rng, check_count(n), dim, temperature)
    else:
        latents = check_latents(latents, dim)
    if two_stage:
        z_mean, log_gamma_z = yield 2, latents
        latents = stage1_latents(z_mean, log_gamma_z, rng, latent_noise, latent_scale)
    x_mean, log_gamma = yield 1, latents
    return observe(x_mean, log_gamma, rng, mode, alpha)


def run(steps, decode):
    """Drive a `protocol` with `decode(stage, latents) -> (mean, log_gamma)`."""
    try:
        request = next(steps)
        while True:
            request = steps.send(decode(*request))
    except StopIteration as finished:
        return finished.value


async def run_async(steps, decode):
    """Drive a `protocol` with an async `decode(stage, latents)`."""
    try:
        request = next(steps)
        while True:
            request = steps.send(await decode(*request))
    except StopIteration as finished:
        return finished.value


BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""The batch sizes a decoder is compiled for: latents are padded to the next
one (and cut into chunks of the largest), so a process compiles at most
this many programs per decoder, whatever batch sizes its callers send."""


def batch_bucket(n):
    """The smallest of BATCH_BUCKETS that holds n rows (1 <= n <= 256)."""
    return next(size for size in BATCH_BUCKETS if size >= n)


def compiled_method(model, name):
    """`getattr(model, name)` (an inference method of one float32 batch,
    `decode_distribution` or `encode`) as one compiled function: a
    `tf.function` on TensorFlow, XLA-compiled only on an accelerator (on a
    CPU, TensorFlow's oneDNN kernels decode batches of 8 to 256 images 1.1
    to 2.4 times as fast as XLA's code and trace in a third of the time:
    docs/performance.md), `jax.jit` of the stateless call on JAX, the eager
    method on other backends and inside a TensorFlow distribution strategy.
    Built on first use and kept on the model (outside Keras's attribute
    tracking, so saving is unchanged); each call reads the model's current
    weights."""
    cache = model.__dict__.get("_kvae_compiled")
    if cache is None:
        cache = {}
        object.__setattr__(model, "_kvae_compiled", cache)
    if name in cache:
        return cache[name]
    method = getattr(model, name)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xla = devices.accelerator() is not None
        function = tf.function(lambda batch: method(batch), jit_compile=xla)
        by_shape = {}  # a concrete function per shape skips tf.function's dispatch

        def compiled(batch):
            if tf.distribute.has_strategy():
                # Under a distribution strategy (the epoch pictures of
                # data-parallel training) the variables are mirrored across
                # devices, which one compiled function cannot read: eager.
                return method(tf.constant(batch))
            if batch.shape not in by_shape:
                spec = tf.TensorSpec(batch.shape, tf.float32)
                by_shape[batch.shape] = function.get_concrete_function(spec)
            return by_shape[batch.shape](tf.constant(batch))

    elif backend == "jax":
        import jax

        def stateless(values, batch):
            with keras.StatelessScope(state_mapping=list(zip(model.variables, values))):
                return method(batch)

        jitted = jax.jit(stateless)

        def compiled(batch):
            return jitted([variable.value for variable in model.variables], batch)

    else:
        compiled = method
    cache[name] = compiled
    return compiled


def in_buckets(function, batch):
    """function(batch) for a float32 NumPy batch of any length, called in
    chunks of at most BATCH_BUCKETS[-1] rows, each padded with zero rows to
    its bucket, so a compiled function sees only len(BATCH_BUCKETS) shapes
    (a row's outputs do not depend on the other rows: kvae's networks act on
    each example alone in inference). Returns a list of one NumPy array per
    output; an output without a batch axis (a scalar log gamma) is returned
    once."""
    batch = np.asarray(batch, np.float32)
    if len(batch) == 0:
        raise ValueError("in_buckets needs at least one row")
    parts = []
    for start in range(0, len(batch), BATCH_BUCKETS[-1]):
        chunk = batch[start : start + BATCH_BUCKETS[-1]]
        padded = np.zeros((batch_bucket(len(chunk)), *chunk.shape[1:]), np.float32)
        padded[: len(chunk)] = chunk
        outputs = [np.asarray(ops.convert_to_numpy(out), np.float32) for out in function(padded)]
        parts.append([out if out.ndim == 0 else out[: len(chunk)] for out in outputs])
    return [column[0] if column[0].ndim == 0 else np.concatenate(column) for column in zip(*parts)]


def encode_numpy(model, x):
    """(mu, log_sigma) of a `VAE`'s q(z|x) for images `x`, float32 NumPy,
    through the compiled encoder (`in_buckets`)."""
    mu, log_sigma = in_buckets(compiled_method(model, "encode"), x)
    return mu, log_sigma


def decode_numpy(model, latents):
    """(mean, log_gamma) of a `VAE`'s p(x|z) at `latents`, float32 NumPy
    (log_gamma a scalar, or per pixel for gamma='pixel'), through the
    compiled decoder (`in_buckets`)."""
    mean, log_gamma = in_buckets(compiled_method(model, "decode_distribution"), latents)
    return mean, log_gamma


class SeededGeneration:
    """The seeded inference of a `kvae.VAE`, NumPy out: `reconstruct`,
    `sample_prior`, `generate_from`, `generate`, through this module's
    protocol and compiled decoder. A mixin of `VAE`, which provides
    `encode` and `latent_dim`; kept here, beside the protocol it runs."""

    def reconstruct(self, x, sample=False, seed=None):
        """Decoder means of x's reconstruction, float32 NumPy: from mu, or
        from z = mu + sigma * eps when `sample` (the originals sample), eps
        from `seed`'s NumPy generator (`kvae.seeds`). The encoder runs
        eagerly here (one call rarely repays a compilation; the service
        and `TwoStageVAE.encode` use the compiled `encode_numpy`)."""
        mu, log_sigma = (ops.convert_to_numpy(t) for t in self.encode(np.asarray(x, np.float32)))
        z = posterior_draw(mu, log_sigma, seeds.generator(seed)) if sample else mu
        return decode_numpy(self, z)[0]

    def sample_prior(self, n, seed=None, temperature=1.0):
        """n latents z ~ N(0, temperature^2 I), float32 NumPy (n, latent_dim):
        step 1 of the generation protocol.

        Args:
            n: int >= 1.
            seed: int, a NumPy Generator, or None.
            temperature: float >= 0, the standard deviation of the prior
                draws (1 is the prior itself; lower values trade variety for
                typicality).
        """
        temperature, _ = check_options(temperature=temperature)
        return prior_latents(seeds.generator(seed), check_count(n), self.latent_dim, temperature)

    def generate_from(self, z, mode="mean", seed=None, alpha=0.0):
        """Decode latents z into examples (`kvae.protocol`).

        Args:
            z: latents, shape (n, latent_dim).
            mode: "mean" returns x_mean(z) + alpha * gamma(z): with alpha = 0
                the decoder mean ("deterministic sampling", seed 002
                Algorithm 7), with alpha != 0 the mean shifted by alpha
                standard deviations of p(x|z) in every pixel (seed 002
                §5.3.4). "sample" draws x ~ N(x_mean(z), gamma^2), gamma per
                pixel for gamma="pixel" ("ancestral sampling", seed 002
                Algorithm 6). Nothing is clipped here; `kvae.images` clips
                to [0, 1] when it converts to pictures.
            seed: int, a NumPy Generator, or None; used by mode="sample".
            alpha: float, the shift of mode="mean" in units of gamma.

        Returns:
            float32 NumPy array of shape (n, *data_shape).
        """
        steps = protocol(
            seeds.generator(seed),
            self.latent_dim,
            latents=ops.convert_to_numpy(z),
            mode=mode,
            alpha=alpha,
        )
        return run(steps, lambda stage, latents: decode_numpy(self, latents))

    def generate(self, n, mode="mean", seed=None, temperature=1.0, alpha=0.0):
        """n new examples: z ~ N(0, temperature^2 I), then `generate_from`,
        all draws from one NumPy generator (`kvae.generation`).

        Args:
            n: int >= 1.
            mode: "mean" (decoder means, shifted by `alpha` gammas) or
                "sample" (x ~ N(x_mean, gamma^2), not clipped).
            seed: int or None; the same seed gives the same output on every
                path (`kvae.TwoStageVAE`, the HTTP service).
            temperature: float >= 0, the standard deviation of z.
            alpha: float, see `generate_from`.
        """
        steps = protocol(
            seeds.generator(seed),
            self.latent_dim,
            n=n,
            mode=mode,
            temperature=temperature,
            alpha=alpha,
        )
        return run(steps, lambda stage, latents: decode_numpy(self, latents))


LATENT_NORMALIZATION_DRAWS = 10000
"""How many stage-2 latents estimate the scale of the latent normalisation."""


def latent_normalization_scale(z):
    """The factor that brings generated latents to unit average standard
    deviation: 1 / mean_j std_n(z_nj) (Asperti & Trentin 2020, Sec. IV-B:
    the stage-2 latents came out with a variance of about .85, and
    normalising them to the prior's unit variance improved generation; the
    original code divided by the mean over latents of the standard
    deviation, a single scale, no centering).

    Args:
        z: array of shape (n, K), n >= 2 generated latents.

    Returns:
        float.
    """
    z = np.asarray(z, np.float64)
    return float(1.0 / np.mean(np.std(z, axis=0)))
