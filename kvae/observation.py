"""Observation models p(x|z) = N(x_mean(z), gamma^2): how gamma is obtained.

One layer per mode (`kvae.options` names the modes and checks their
options); the mode names are also the CLI values and recipe keys:

- `computed`: gamma^2 = running minimum of the batch MSE (Asperti & Trentin
  2020); non-trainable state, no gradient.
- `learned`: a trainable scalar log gamma, initially 0 (Dai & Wipf 2019; the
  LS-VAE of Berger & Sebag 2020).
- `fixed`: a constant gamma = sigma (F-VAE). The mode `mse` is a shortcut for
  sigma^2 = 1/2, under which the NLL is the plain summed squared error plus
  a constant.
- `pixel`: the decoder outputs a log sigma per pixel (LV-VAE), optionally
  floored at `min_sigma` or shared at the start (`sigma_warmup`); both off
  by default (see `PixelGamma`).

Each layer answers `log_gamma(pixel_log_sigma)` and `update_gamma(mse)`,
which the train steps call after the optimizer step.
"""

import math

import keras
from keras import ops

from kvae import losses
from kvae.options import check_min_sigma, check_sigma_warmup, resolve_gamma


class Observation(keras.layers.Layer):
    """Base class: a gamma that needs no decoder output and no update."""

    pixel = False
    """Whether the decoder must output a per-pixel log sigma."""

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"  # gamma stays float32 under mixed precision
        super().__init__(**kwargs)

    def log_gamma(self, pixel_log_sigma=None):
        """The log standard deviation of p(x|z), float32."""
        raise NotImplementedError

    def update_gamma(self, mse):
        """Update the state after an optimizer step (no-op by default)."""

    def call(self, pixel_log_sigma=None):
        return self.log_gamma(pixel_log_sigma)


@keras.saving.register_keras_serializable(package="kvae")
class ComputedGamma(Observation):
    """gamma = sqrt(m), m the running minimum of the batch MSE.

    `gamma_square` (m) starts at 1 and after every training step becomes
    min(m, 0.99 m + 0.01 mse) with that step's batch MSE
    (`kvae.losses.computed_gamma_update`). It carries no gradient.

    Reference: Asperti & Trentin 2020, https://arxiv.org/abs/2002.07514
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.gamma_square = self.add_weight(
            name="gamma_square",
            shape=(),
            initializer="ones",
            trainable=False,
        )

    def log_gamma(self, pixel_log_sigma=None):
        return 0.5 * ops.log(ops.stop_gradient(self.gamma_square))

    def update_gamma(self, mse):
        self.gamma_square.assign(losses.computed_gamma_update(self.gamma_square, mse))


@keras.saving.register_keras_serializable(package="kvae")
class LearnedGamma(Observation):
    """A trainable scalar log gamma, initially 0 (gamma = 1), no clamp.

    Reference: Dai & Wipf 2019, https://arxiv.org/abs/1903.05789; the
    LS-VAE of Berger & Sebag 2020, https://arxiv.org/abs/2003.01972
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.log_gamma_variable = self.add_weight(
            name="log_gamma",
            shape=(),
            initializer="zeros",
            trainable=True,
        )

    def log_gamma(self, pixel_log_sigma=None):
        return ops.convert_to_tensor(self.log_gamma_variable)


@keras.saving.register_keras_serializable(package="kvae")
class FixedGamma(Observation):
    """A gamma that training does not learn: sigma (F-VAE of Berger & Sebag
    2020), kept as a non-trainable log sigma so that a schedule can move it
    between epochs (`set_sigma`; their appendix A.2 runs F-VAE along LS-VAE's
    sigma trajectory). `sigma` in the config is the initial value."""

    def __init__(self, sigma, **kwargs):
        super().__init__(**kwargs)
        _, self.sigma = resolve_gamma("fixed", sigma)
        self.log_sigma = self.add_weight(
            name="log_sigma",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.sigma)),
            trainable=False,
        )

    def log_gamma(self, pixel_log_sigma=None):
        return ops.convert_to_tensor(self.log_sigma)

    def set_sigma(self, sigma):
        """Move the fixed gamma to `sigma` (> 0) from the next step on."""
        _, sigma = resolve_gamma("fixed", sigma)
        self.log_sigma.assign(math.log(sigma))

    def load_own_variables(self, store):
        if len(store.keys()) == 0:
            return  # a file from before sigma was a weight: keep the config's sigma
        super().load_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="kvae")
class PixelGamma(Observation):
    """gamma_i(z) = exp(log sigma_i(z)) from the decoder (LV-VAE).

    Reference: Berger & Sebag 2020, Eq. (11).

    Args:
        min_sigma: None (the paper's model, no floor) or a floor > 0 on every
            gamma_i: log gamma_i = max(log sigma_i(z), log min_sigma).
            Pixels that are exactly 0 (Fashion-MNIST's black background,
            which the decoder can tell from z) make the per-pixel
            likelihood unbounded: the mean reaches 0 and sigma can shrink
            for ever, and in float32 the loss turns NaN once
            exp(-2 log sigma) overflows. The floor is a deliberate deviation
            that bounds it; below the floor the decoder's log sigma gets no
            gradient.
        sigma_warmup: 0 (the paper's model) or a number of steps W: for the
            first W training steps every pixel of every example shares one
            sigma, the mean of the decoder's log sigma (an LS-VAE), which
            then hands over linearly to the per-pixel sigma(z) over the next
            W steps (`losses.pooled_log_sigma`). The count of steps taken is
            a non-trainable weight, so a resumed run goes on where it
            stopped. An opt-in deviation (docs/results.md part 1): it lets the means find
            the data before sigma(z) can explain a residual away.
    """

    pixel = True

    def __init__(self, min_sigma=None, sigma_warmup=0, **kwargs):
        super().__init__(**kwargs)
        self.min_sigma = check_min_sigma(min_sigma)
        self.sigma_warmup = check_sigma_warmup(sigma_warmup)
        if self.sigma_warmup:  # the default model keeps its weights list
            self.warmup_step = self.add_weight(
                name="sigma_warmup_step", shape=(), initializer="zeros", trainable=False
            )

    def log_gamma(self, pixel_log_sigma=None, pooled=None):
        """log gamma_i; `pooled`, for the warm-up, is the mean log sigma of
        the global batch (`VAE.decode_distribution` passes it in training);
        without it the mean over the given batch is used."""
        if pixel_log_sigma is None:
            raise ValueError("gamma='pixel' needs the decoder's log sigma.")
        log_gamma = ops.cast(pixel_log_sigma, "float32")
        if self.sigma_warmup:
            if pooled is None:
                pooled = ops.mean(log_gamma)
            weight = losses.sigma_warmup_weight(self.warmup_step, self.sigma_warmup)
            log_gamma = losses.pooled_log_sigma(log_gamma, pooled, weight)
        if self.min_sigma is None:
            return log_gamma
        return ops.maximum(log_gamma, math.log(self.min_sigma))

    def update_gamma(self, mse):
        if self.sigma_warmup:
            self.warmup_step.assign(self.warmup_step + 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "min_sigma": self.min_sigma,
            "sigma_warmup": self.sigma_warmup,
        }


_OBSERVATIONS = {
    "computed": ComputedGamma,
    "learned": LearnedGamma,
    "fixed": FixedGamma,
    "pixel": PixelGamma,
}


def get(gamma, sigma=None, min_sigma=None, name="observation", sigma_warmup=0):
    """The observation layer for a gamma mode (see `GAMMA_MODES`);
    `min_sigma` and `sigma_warmup` only with 'pixel'."""
    gamma, sigma = resolve_gamma(gamma, sigma)
    check_min_sigma(min_sigma, gamma)
    check_sigma_warmup(sigma_warmup, gamma)
    if gamma == "fixed":
        return FixedGamma(sigma, name=name)
    if gamma == "pixel":
        return PixelGamma(min_sigma, sigma_warmup, name=name)
    return _OBSERVATIONS[gamma](name=name)
