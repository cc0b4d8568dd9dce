"""kvae: a Keras 3 model zoo of balanced variational autoencoders.

Importing kvae registers every serializable class, so that
`keras.saving.load_model` can read kvae's `.keras` files afterwards.
"""

from kvae import hub, losses, networks, observation, presets
from kvae.loader import load
from kvae.models import VAE
from kvae.two_stage import TwoStageVAE

__all__ = [
    "TwoStageVAE",
    "VAE",
    "hub",
    "load",
    "losses",
    "networks",
    "observation",
    "presets",
    "zoo",
]
__version__ = "0.1.0"


def __getattr__(name):
    # `kvae.zoo` on first use, so that `python -m kvae.zoo` runs it only once
    if name == "zoo":
        import importlib

        return importlib.import_module("kvae.zoo")
    raise AttributeError(f"module 'kvae' has no attribute {name!r}")
