"""kvae: a Keras 3 model zoo of balanced variational autoencoders.

    import kvae
    model = kvae.load("fmnist_two_stage_computed")   # a zoo name, a path or hf://...
    images = model.generate(16, mode="mean", seed=0)

`import kvae` is light: each name below loads its module on first use, and
Keras with TensorFlow or JAX with it, so that kvae's commands answer
`--help` at once. kvae's classes are registered with Keras once
`kvae.models` is imported: `kvae.load` and `kvae.VAE` do it; to open a kvae
`.keras` file with `keras.saving.load_model` alone, `import kvae.models`
first.
"""

import importlib

__version__ = "0.1.0"

_NAMES = {
    "VAE": ("kvae.models", "VAE"),
    "TwoStageVAE": ("kvae.two_stage", "TwoStageVAE"),
    "load": ("kvae.loader", "load"),
}
"""Public names and the module each lives in."""
_MODULES = (
    "catalog",
    "config",
    "data",
    "evaluation",
    "generation",
    "hub",
    "images",
    "latent_paths",
    "losses",
    "models",
    "networks",
    "observation",
    "presets",
    "recipes",
    "training",
    "zoo",
)
"""Submodules reachable as attributes (kvae.zoo, kvae.hub, ...)."""

__all__ = [*_NAMES, *_MODULES]


def __getattr__(name):
    if name in _NAMES:
        module, attribute = _NAMES[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    if name in _MODULES:
        return importlib.import_module(f"kvae.{name}")
    raise AttributeError(f"module 'kvae' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
