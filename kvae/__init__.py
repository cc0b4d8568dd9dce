"""kvae: a Keras 3 model zoo of balanced variational autoencoders.

Importing kvae registers every serializable class, so that
`keras.saving.load_model` can read kvae's `.keras` files afterwards.
"""

from kvae import losses, networks, observation
from kvae.models import VAE
from kvae.saving import load

__all__ = ["VAE", "load", "losses", "networks", "observation"]
__version__ = "0.1.0"
