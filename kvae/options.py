"""The values a model's or a run's options may take, and their checks:
plain Python, so that the commands parse and check their options without
importing Keras (and TensorFlow or JAX with it).

The gamma modes are also the command-line values, the recipe keys and the
`kvae.observation` layers' names:

- `computed`: gamma^2 = running minimum of the batch MSE (Asperti & Trentin
  2020);
- `learned`: a trainable scalar log gamma (Dai & Wipf 2019; LS-VAE);
- `fixed`: a constant gamma = sigma (F-VAE); `mse` is the shortcut for
  sigma^2 = 1/2, under which the NLL is the plain squared error;
- `pixel`: a log sigma per pixel from the decoder (LV-VAE), optionally
  floored (`min_sigma`) or shared at the start (`sigma_warmup`).
"""

import math

GAMMA_MODES = ("computed", "learned", "fixed", "pixel")
"""The observation models of `kvae.observation`."""
GAMMAS = GAMMA_MODES + ("mse",)
"""What a stage-1 gamma may be named: a mode or the `mse` shortcut."""
STAGE2_GAMMAS = ("computed", "learned")
MSE_SIGMA = math.sqrt(0.5)
"""The sigma under which the Gaussian NLL is the plain squared error."""
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
"""The Keras dtype policies a VAE computes in; "auto" picks one
(`kvae.models.auto_precision`)."""


def check_positive_int(name, value):
    """Raise a ValueError naming `name` unless `value` is an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")


def resolve_gamma(gamma, sigma=None):
    """Check a (gamma, sigma) pair and resolve the `mse` shortcut.

    Returns:
        (gamma, sigma): gamma one of `GAMMA_MODES`; sigma a positive float
        for `fixed`, else None.

    Raises:
        ValueError: an unknown mode, a missing or non-positive sigma for
            `fixed`, or a sigma given to a mode that does not use it.
    """
    if gamma == "mse":
        if sigma is not None:
            raise ValueError(
                "gamma='mse' fixes sigma^2 = 1/2; do not also pass sigma. "
                f"Received: sigma={sigma!r}"
            )
        return "fixed", MSE_SIGMA
    if gamma not in GAMMA_MODES:
        raise ValueError(f"Unknown gamma mode {gamma!r}; expected one of {', '.join(GAMMAS)}.")
    if gamma == "fixed":
        if sigma is None:
            raise ValueError(
                "gamma='fixed' needs sigma > 0 (the fixed gamma); gamma='mse' is sigma^2 = 1/2."
            )
        sigma = float(sigma)
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be a finite number > 0. Received: sigma={sigma!r}")
        return gamma, sigma
    if sigma is not None:
        raise ValueError(
            f"sigma is only used with gamma='fixed' (or 'mse'); gamma="
            f"{gamma!r} does not take it. Received: sigma={sigma!r}"
        )
    return gamma, None


def check_sigma_warmup(sigma_warmup, gamma="pixel"):
    """Validate the sigma warm-up: 0 (off) for any gamma, else a whole
    number of steps > 0 with gamma 'pixel'. Returns it as an int."""
    if sigma_warmup in (None, 0):
        return 0
    if isinstance(sigma_warmup, bool) or int(sigma_warmup) != sigma_warmup or sigma_warmup < 0:
        raise ValueError(
            f"sigma_warmup must be a whole number of steps >= 0. "
            f"Received: sigma_warmup={sigma_warmup!r}"
        )
    if gamma != "pixel":
        raise ValueError(
            f"sigma_warmup shares the per-pixel sigma of gamma='pixel' at the start; "
            f"gamma={gamma!r} does not take it. Received: sigma_warmup={sigma_warmup!r}"
        )
    return int(sigma_warmup)


def check_min_sigma(min_sigma, gamma="pixel"):
    """Validate the LV-VAE sigma floor: None, or a finite float > 0 with
    gamma 'pixel'. Returns it as a float (or None)."""
    if min_sigma is None:
        return None
    if gamma != "pixel":
        raise ValueError(
            f"min_sigma is a floor on the per-pixel sigma of gamma='pixel'; "
            f"gamma={gamma!r} does not take it. Received: min_sigma={min_sigma!r}"
        )
    min_sigma = float(min_sigma)
    if not (min_sigma > 0 and math.isfinite(min_sigma)):
        raise ValueError(
            f"min_sigma must be a finite number > 0. Received: min_sigma={min_sigma!r}"
        )
    return min_sigma


REMOVED_OPTIONS = {"beta_nll": 0.0}
"""Options kvae had and dropped, with the value under which dropping them
changes nothing: `beta_nll` (a beta-NLL training objective for the LV-VAE,
dropped because it helped nowhere, docs/results.md part 1).
Checkpoints and run folders of those versions carry it."""


def check_removed_options(options):
    """Pop `REMOVED_OPTIONS` from a dict of saved options (a model's config,
    a run's config.json); a value other than the neutral one is refused
    with a ValueError naming the option."""
    for name, neutral in REMOVED_OPTIONS.items():
        value = options.pop(name, neutral)
        if value != neutral:
            raise ValueError(
                f"{name}={value!r}: this was saved by an older kvae with an option that has "
                f"been removed ({name}); kvae can load it only with {name}={neutral!r}."
            )
    return options
