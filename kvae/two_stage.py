"""The two-stage VAE as one object.

    model = kvae.TwoStageVAE(stage1, stage2)          # two trained kvae.VAEs
    model.generate(16, mode="mean", seed=0)           # through stage 2
    model.save("presets/fmnist")                      # a preset folder (kvae.presets)
    model = kvae.load("presets/fmnist")               # sha256 of each file checked

Stage 1 is a `VAE` of the data; stage 2, when present, a `VAE` of stage 1's
latents (Dai & Wipf 2019, Sec. 3.2). The object also owns the two-stage
generation options: gamma_z noise on the generated latents (`latent_noise`)
and the latent normalisation scale (`latent_scale`). Generation follows
`kvae.generation.protocol`, the same protocol as the HTTP service.
"""

from keras import ops

from kvae import generation, presets, saving, seeds


def default_latent_noise(stage2):
    """Whether two-stage generation adds gamma_z noise by default: yes for a
    learned stage-2 gamma (Dai & Wipf's code draws z ~ N(z_mean, gamma_z^2)),
    no otherwise (Asperti & Trentin's code decodes the stage-2 mean). kvae
    writes this rule here only."""
    return stage2 is not None and stage2.gamma_mode == "learned"


class TwoStageVAE:
    """A stage-1 `VAE`, an optional stage-2 `VAE` and the two-stage
    generation options.

    Args:
        stage1: the `kvae.VAE` of the data.
        stage2: None, or the `kvae.VAE` of stage 1's latents
            (data_shape == (stage1.latent_dim,)).
        latent_noise: None (the default rule, `default_latent_noise`), or a
            bool: add gamma_z * eps to the stage-2 decoder means.
        latent_scale: None, or the factor that multiplies the generated
            stage-1 latents (`estimate_latent_scale`, Asperti & Trentin's
            normalisation).
        name: a name for messages and the card.
        card: a dict of facts about the model (the zoo's model card).
    """

    def __init__(
        self, stage1, stage2=None, latent_noise=None, latent_scale=None, name=None, card=None
    ):
        if stage2 is not None and tuple(stage2.data_shape) != (stage1.latent_dim,):
            raise ValueError(
                f"stage 2 models latents of shape {tuple(stage2.data_shape)}, but "
                f"stage 1 has latent_dim={stage1.latent_dim}."
            )
        if stage2 is None and latent_noise:
            raise ValueError("latent_noise applies to a second stage; this model has none.")
        self.stage1 = stage1
        self.stage2 = stage2
        self.latent_noise = (
            default_latent_noise(stage2) if latent_noise is None else bool(latent_noise)
        )
        self.latent_scale = None if latent_scale is None else float(latent_scale)
        self.card = dict(card or {})
        self.name = name or self.card.get("name") or "two-stage VAE"

    def __repr__(self):
        return (
            f"TwoStageVAE(name={self.name!r}, stages={self.stages}, "
            f"data_shape={self.data_shape}, latent_noise={self.latent_noise})"
        )

    # -- what it is -----------------------------------------------------------------

    @property
    def stages(self):
        """The generation stages available: (1,) or (1, 2)."""
        return (1,) if self.stage2 is None else (1, 2)

    @property
    def data_shape(self):
        return tuple(self.stage1.data_shape)

    def latent_dim_of(self, stage=None):
        """The length of the latents that `generate_from(stage=...)` takes."""
        return self.stage1.latent_dim if self.check_stage(stage) == 1 else self.stage2.latent_dim

    @property
    def latent_dim(self):
        """The latent length of the default generation stage."""
        return self.latent_dim_of(None)

    def check_stage(self, stage):
        """The stage to generate with: `stage`, or the last one when None."""
        if stage is None:
            return self.stages[-1]
        if stage not in self.stages:
            raise ValueError(
                f"{self.name} generates with stage(s) "
                f"{', '.join(map(str, self.stages))}. Received: stage={stage!r}"
            )
        return stage

    def model(self, stage):
        """The `VAE` of a stage (1 or 2)."""
        return self.stage1 if self.check_stage(stage) == 1 else self.stage2

    # -- inference (float32 NumPy out) --------------------------------------------------

    def encode(self, x):
        """(mu, log_sigma) of stage 1's q(z|x), float32 NumPy."""
        return generation.encode_numpy(self.stage1, ops.convert_to_numpy(x))

    def sample_posterior(self, mu, log_sigma, seed=None):
        """z = mu + sigma * eps, eps from `seed`'s NumPy generator."""
        return generation.posterior_draw(mu, log_sigma, seeds.generator(seed))

    def reconstruct(self, x, sample=False, seed=None):
        """Stage-1 decoder means of x's reconstruction (`VAE.reconstruct`)."""
        return self.stage1.reconstruct(x, sample=sample, seed=seed)

    def decode_distribution(self, z, stage=1):
        """(mean, log_gamma) of a stage's p(.|z) as float32 NumPy."""
        return generation.decode_numpy(self.model(stage), z)

    def protocol(
        self, rng, n=None, latents=None, mode="mean", temperature=1.0, alpha=0.0, stage=None
    ):
        """The generation protocol of this model (`kvae.generation.protocol`)
        for `run` or `run_async`; `stage` None is the last stage."""
        stage = self.check_stage(stage)
        return generation.protocol(
            rng,
            self.latent_dim_of(stage),
            n=n,
            latents=latents,
            mode=mode,
            temperature=temperature,
            alpha=alpha,
            two_stage=stage == 2,
            latent_noise=self.latent_noise,
            latent_scale=self.latent_scale,
        )

    def _decode(self, stage, latents):
        """`decode_distribution` in the argument order of the protocol's
        decode requests (stage, latents)."""
        return self.decode_distribution(latents, stage)

    def generate(self, n, mode="mean", seed=None, temperature=1.0, alpha=0.0, stage=None):
        """n examples from the prior: stage 2 (the default when present)
        maps u ~ N(0, T^2 I) to z, stage 1 draws z ~ N(0, T^2 I); "mean"
        returns decoder means (shifted by alpha gammas), "sample" draws from
        p(x|z). float32 NumPy (n, *data_shape); the same seed gives the
        same images as the HTTP service."""
        steps = self.protocol(
            seeds.generator(seed), n=n, mode=mode, temperature=temperature, alpha=alpha, stage=stage
        )
        return generation.run(steps, self._decode)

    def generate_from(self, latents, mode="mean", seed=None, alpha=0.0, stage=None):
        """Examples from given latents: stage-2 u when `stage` is 2 (the
        default when present), else stage-1 z."""
        steps = self.protocol(
            seeds.generator(seed),
            latents=ops.convert_to_numpy(latents),
            mode=mode,
            alpha=alpha,
            stage=stage,
        )
        return generation.run(steps, self._decode)

    def estimate_latent_scale(self, draws=generation.LATENT_NORMALIZATION_DRAWS):
        """The latent normalisation factor of stage 2
        (`generation.latent_normalization_scale`) on `draws` generated
        stage-1 latents (with this model's latent noise) from a fixed seed;
        set it as `latent_scale` to use it."""
        if self.stage2 is None:
            raise ValueError("the latent normalisation needs a second stage.")
        rng = seeds.generator(seeds.latent_scale_seed(draws))
        u = generation.prior_latents(rng, draws, self.stage2.latent_dim)
        z_mean, log_gamma_z = self._decode(2, u)
        z = generation.stage1_latents(z_mean, log_gamma_z, rng, self.latent_noise)
        return generation.latent_normalization_scale(z)

    def to_float32(self):
        """The same model computing in float32 (CPU inference)."""
        return TwoStageVAE(
            saving.to_float32(self.stage1),
            None if self.stage2 is None else saving.to_float32(self.stage2),
            self.latent_noise,
            self.latent_scale,
            self.name,
            self.card,
        )

    # -- the preset folder ----------------------------------------------------------------

    def save(self, folder):
        """Write the model as a preset folder (`kvae.presets.save`):
        stage1.keras (and stage2.keras), then config.json with each file's
        sha256 and size. The `.keras` files keep what the models hold (an
        optimizer only if compiled). Returns the folder's Path."""
        return presets.save(
            folder,
            {"stage1": self.stage1, "stage2": self.stage2},
            self.name,
            self.latent_noise,
            self.latent_scale,
            self.card,
        )
