"""The VAE model: networks + an observation model + the shared loss."""

import contextlib

import keras
import numpy as np
from keras import ops

from kvae import backends, devices, distribute, generation, losses, networks, observation
from kvae.options import PRECISIONS, check_positive_int, check_removed_options, resolve_gamma


def auto_precision():
    """The precision `auto` stands for: mixed_bfloat16 where Keras computes
    on an accelerator with bfloat16 matrix units (an NVIDIA GPU of compute
    capability 8.0 or more, a TPU), float32 elsewhere (on CPUs mixed
    precision is slower, docs/performance.md). That bfloat16 learns what
    float32 learns was checked on a CPU, where it rounds as on a GPU
    (docs/performance.md, "Precision")."""
    device = devices.accelerator()
    if device is None:
        return "float32"
    if device["platform"] == "tpu" or (device["compute_capability"] or (0, 0)) >= (8, 0):
        return "mixed_bfloat16"
    return "float32"


ADAM_EPSILON = 1e-8
"""TF1's Adam epsilon, which both originals used (Keras's default is 1e-7)."""


def adam(learning_rate=1e-4):
    """The originals' optimizer: Adam with TF1's epsilon."""
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=ADAM_EPSILON)


METRIC_NAMES = ("loss", "recon", "kl", "mse", "gamma", "active")
"""Logged every step (epoch means in `fit`'s logs): the loss, the Gaussian
NLL term, the KL term, the batch MSE, the mean gamma, and the number of
active latents in the batch (mean sigma^2 < 0.8)."""

SEED_STATE_KEY = "seed_generator_state"
"""Where a `.keras` file keeps the state of the train step's noise."""


@keras.saving.register_keras_serializable(package="kvae")
class VAE(generation.SeededGeneration, keras.Model):
    """A Gaussian VAE whose observation noise gamma is computed, learned,
    fixed or predicted per pixel.

    The loss per batch is

        loss = recon + kl_weight * kl,
        recon = mean_b sum_i [(x - x_mean)^2 / (2 gamma^2) + log gamma + 1/2 log 2 pi],
        kl = mean_b sum_j 1/2 (mu^2 + sigma^2 - 2 log sigma - 1),

    with z = mu + sigma * eps sampled on every forward pass (as the originals).
    The same class serves as the second stage of a two-stage VAE: give it
    `data_shape=(K,)` of the stage-1 latents and `net="stage2"`.

    Args:
        data_shape: tuple of ints, the shape of one example, e.g.
            (64, 64, 3) for images or (64,) for stage-1 latents.
        latent_dim: int >= 1, the number of latent dimensions (kappa).
        net: str, one of `kvae.networks.NETWORKS`: "resnet", "infogan",
            "mlp" or "stage2".
        net_config: dict, the network's hyper-parameters (e.g. base_dim,
            num_scale, fc_dim for "resnet"; second_dim, second_depth for
            "stage2"); missing ones take the network's defaults.
        gamma: str, the observation model: "computed" (Asperti & Trentin),
            "learned" (Dai & Wipf; LS-VAE), "fixed" (F-VAE, needs sigma),
            "mse" (fixed with sigma^2 = 1/2) or "pixel" (LV-VAE).
        sigma: float > 0, the fixed gamma for gamma="fixed".
        kl_weight: float >= 0, the weight of the KL term (Asperti & Trentin's
            CelebA recipe uses (2 H / latent_dim)^2).
        precision: str, "float32", "mixed_float16" or "mixed_bfloat16", or
            "auto" (`auto_precision`: bfloat16 on recent GPUs and TPUs,
            float32 elsewhere). Loss math, latent heads, outputs and gamma
            are float32 in all cases.
        min_sigma: None or float > 0, only for gamma="pixel": a floor on the
            per-pixel sigma (off by default; see
            `kvae.observation.PixelGamma`).
        sigma_warmup: 0 (default, the paper's model) or a number of steps,
            only for gamma="pixel": one shared sigma for that many steps,
            handed over to the per-pixel sigma over as many more (see
            `kvae.observation.PixelGamma`).
        seed: int or None, seeds the sampling of z in training.

    Example:

    ```python
    import kvae
    model = kvae.VAE((28, 28, 1), latent_dim=16, net="infogan", gamma="computed")
    model.compile()  # Adam(1e-4, epsilon=1e-8), as TF1
    model.fit(images, epochs=1, batch_size=64)
    samples = model.generate(16, mode="mean", seed=0)
    ```

    Reference:
        Asperti & Trentin 2020, https://arxiv.org/abs/2002.07514;
        Dai & Wipf 2019, https://arxiv.org/abs/1903.05789;
        Berger & Sebag 2020, https://arxiv.org/abs/2003.01972.

    Layout (the class is longer than kvae's 250-line guide, a fifth of it
    this docstring): what Keras needs on the model itself stays here (the
    constructor, config and variable serialization, compile, the forward
    pass and the step dispatch); the loss terms are `losses.batch_terms`,
    their data-parallel reduction `distribute.global_terms`, the backends'
    steps `kvae.backends`, and the seeded NumPy inference the
    `generation.SeededGeneration` mixin.
    """

    def __init__(
        self,
        data_shape,
        latent_dim,
        net="resnet",
        net_config=None,
        gamma="computed",
        sigma=None,
        kl_weight=1.0,
        precision=None,
        min_sigma=None,
        seed=None,
        sigma_warmup=0,
        **kwargs,
    ):
        saved_dtype = kwargs.pop("dtype", None)  # present when loading
        check_removed_options(kwargs)  # checkpoints of older kvae
        if precision is None:
            precision = _policy_name(saved_dtype) if saved_dtype else "float32"
        if precision == "auto":
            precision = auto_precision()
        if precision not in PRECISIONS:
            raise ValueError(
                f"Unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)} or auto."
            )
        super().__init__(dtype=precision, **kwargs)
        check_positive_int("latent_dim", latent_dim)
        data_shape = tuple(int(d) for d in data_shape)
        if not data_shape or min(data_shape) < 1:
            raise ValueError(
                f"data_shape must be a non-empty tuple of positive sizes. "
                f"Received: data_shape={data_shape}"
            )
        kl_weight = float(kl_weight)
        if not kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0. Received: kl_weight={kl_weight!r}")

        self.gamma_mode, self.sigma = resolve_gamma(gamma, sigma)
        self.data_shape = data_shape
        self.latent_dim = latent_dim
        self.net = net
        self.net_config = networks.resolve_config(net, net_config)
        self.kl_weight = kl_weight
        self.precision = precision
        self.seed = seed

        self.observation = observation.get(
            self.gamma_mode, self.sigma, min_sigma, sigma_warmup=sigma_warmup
        )
        self.min_sigma = getattr(self.observation, "min_sigma", None)  # validated by get
        self.sigma_warmup = getattr(self.observation, "sigma_warmup", 0)
        self.encoder, self.decoder = networks.build(
            net,
            data_shape,
            latent_dim,
            pixel=self.observation.pixel,
            dtype=self.dtype_policy,
            net_config=self.net_config,
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=name) for name in METRIC_NAMES]
        self.build((None, *data_shape))

    def build(self, input_shape=None):
        # Every weight is created in __init__; recording the input shape lets
        # `.keras` files restore the optimizer state on load.
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)  # carried by `precision`
        return {
            **config,
            "data_shape": list(self.data_shape),
            "latent_dim": self.latent_dim,
            "net": self.net,
            "net_config": dict(self.net_config),
            "gamma": self.gamma_mode,
            "sigma": self.sigma,
            "min_sigma": self.min_sigma,
            "sigma_warmup": self.sigma_warmup,
            "kl_weight": self.kl_weight,
            "precision": self.precision,
            "seed": self.seed,
        }

    def save_own_variables(self, store):
        # Keras saves no SeedGenerator state; without it a resumed run would
        # draw the eps of its first epochs again.
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = [key for key in store.keys() if key != SEED_STATE_KEY]
        super().load_own_variables({key: store[key] for key in keys})
        if SEED_STATE_KEY in store.keys():  # absent from files saved before it
            self.seed_generator.state.assign(np.asarray(store[SEED_STATE_KEY]))

    def compile(self, optimizer="auto", **kwargs):
        """Compile with Adam(1e-4, epsilon=1e-8) by default (TF1's epsilon,
        as the originals; Keras's default is 1e-7). Under mixed_float16 Keras
        wraps the optimizer in a LossScaleOptimizer."""
        if optimizer == "auto":
            optimizer = adam()
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling on load when `compile` is overridden; without
        # this the optimizer state (iterations, moments, loss scale) is lost.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return self.trackers

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras's TensorFlow trainer, under a tf.distribute strategy, takes a
        # batch from the training iterator to build the model before fit;
        # with a reshuffling tf.data pipeline the run then trains on other
        # batches than on one device. Every weight of a VAE exists from
        # __init__ and it compiles no loss or metric: only the optimizer is
        # left to build, which needs no data.
        if self.optimizer is not None and not self.optimizer.built:
            strategy = getattr(self, "distribute_strategy", None)
            with strategy.scope() if strategy is not None else contextlib.nullcontext():
                self.optimizer.build(self.trainable_variables)

    # -- the forward pass and the loss (keras.ops only) ---------------------

    def encode(self, x, training=False):
        """x -> (mu, log_sigma) of q(z|x), float32, shape (B, latent_dim)."""
        mu, log_sigma = self.encoder(x, training=training)
        return mu, log_sigma

    def decode(self, z, training=False):
        """z -> mean of p(x|z); for gamma="pixel", (mean, log_sigma)."""
        return self.decoder(z, training=training)

    def decode_distribution(self, z, training=False, weights=None, count=None):
        """p(x|z) = N(x_mean, gamma^2): (x_mean, log_gamma), float32; log_gamma
        is a scalar, or per pixel for gamma="pixel" (floored at min_sigma).
        `weights` (B,) and `count` (their global sum), given by the train
        and test steps, make the sigma warm-up share the global batch's
        mean log sigma, as on one device."""
        decoded = self.decode(z, training=training)
        if not self.observation.pixel:
            return decoded, self.observation.log_gamma()
        x_mean, pixel_log_sigma = decoded
        pooled = None
        if self.sigma_warmup and weights is not None:
            per_example = losses.mean_per_example(pixel_log_sigma, x_mean)
            pooled = distribute.global_sum(losses.weighted_share(per_example, weights, count))
        return x_mean, self.observation.log_gamma(pixel_log_sigma, pooled)

    def sample_posterior(self, mu, log_sigma, noise=None):
        """z = mu + sigma * eps in the train step (`losses.gaussian_sample`);
        eps ~ N(0, I) from the model's in-graph seed generator unless
        `noise` gives it. Under data parallelism eps is drawn for the global
        batch and each replica takes its rows, so N devices draw what one
        device draws. Inference draws use `kvae.generation` instead."""
        if noise is None:
            local = ops.shape(mu)[0]
            noise = keras.random.normal(
                (local * distribute.replicas_in_sync(), self.latent_dim),
                seed=self.seed_generator,
            )
            noise = distribute.replica_rows(noise, local)
        return losses.gaussian_sample(mu, log_sigma, noise)

    def compute_terms(self, x, training=False, noise=None, weights=None):
        """One forward pass and every loss term, as this replica's share of
        the global batch means (the means themselves on one device).

        Args:
            x: a batch of data, shape (B, *data_shape).
            training: batch norm in training mode.
            noise: optional eps of shape (B, latent_dim) for z; drawn from
                the model's seed generator when None.
            weights: optional (B,) example weights (1 for an example, 0 for
                padding); every mean is sum_i w_i t_i / sum_i w_i over the
                global batch.

        Returns:
            dict of float32 tensors: loss, recon, kl, mse, gamma (shares of
            the batch means, `losses.weighted_share`), active (the count on
            this replica's share), latent_variance (K,), the share of the
            mean posterior variance per latent, and count, the global
            weight total (`losses.batch_terms`); `distribute.global_terms`
            completes them.
        """
        x = ops.cast(x, "float32")
        mu, log_sigma = self.encode(x, training=training)
        z = self.sample_posterior(mu, log_sigma, noise=noise)
        weights, count = distribute.example_weights(x, weights)
        x_mean, log_gamma = self.decode_distribution(z, training, weights, count)
        return losses.batch_terms(
            x, x_mean, log_gamma, mu, log_sigma, weights, count, self.kl_weight
        )

    def update_trackers(self, terms):
        """Add a step's global terms to the metric trackers, weighted by the
        step's example count; return their results."""
        for tracker in self.trackers:
            tracker.update_state(terms[tracker.name], sample_weight=terms["count"])
        return {tracker.name: tracker.result() for tracker in self.trackers}

    # -- training: the per-backend steps live in kvae.backends --------------

    def train_step(self, *args):
        return backends.get().train_step(self, *args)

    def test_step(self, *args):
        return backends.get().test_step(self, *args)

    def loss_and_gradients(self, x, noise=None):
        """(terms, gradients) of one training-mode forward pass, with
        gradients of the (unscaled) loss in `trainable_variables` order,
        called eagerly (JAX compiles the pass as one program). The train
        steps use the same code; tests compare backends with it."""
        return backends.get().loss_and_gradients(self, x, noise)

    # -- inference -----------------------------------------------------------

    def call(self, x, training=False):
        """The reconstruction mean from mu (deterministic), as a tensor; x
        may be a step's dict {"x", ...} (`backends.unpack`)."""
        x, _, _ = backends.unpack(x)
        mu, _ = self.encode(ops.cast(x, "float32"), training=training)
        return self.decode_distribution(mu, training=training)[0]

    def gamma(self):
        """The current scalar gamma (None for per-pixel sigma)."""
        if self.observation.pixel:
            return None
        return float(ops.convert_to_numpy(ops.exp(self.observation.log_gamma())))


def _policy_name(dtype):
    if isinstance(dtype, dict):  # a serialized DTypePolicy
        return dtype.get("config", {}).get("name", "float32")
    if hasattr(dtype, "name"):
        return dtype.name
    return str(dtype)
