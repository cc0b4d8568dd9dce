"""The zoo's catalogue: its manifest, and where each model's files are.

The manifest (`manifest.json`) maps each zoo name to its card: a trained
model (its files, metrics, command, and, once published, its Hub handle
pinned to a commit) or a recipe. A model's files are looked for, in order:

1. the local zoo folder: $KVAE_ZOO if set, else the `zoo/` of a source
   checkout, else the zoo that ships inside the installed package (its
   manifest and the default model only);
2. the Hugging Face cache, then the Hub, through the card's pinned handle
   (`kvae.hub`; a fully cached commit needs no network).

`kvae.load(name)` and `kvae.zoo.load(name)` go through `locate`.
"""

import json
import os
from pathlib import Path

from kvae.errors import KvaeError, did_you_mean

MANIFEST = "manifest.json"
ZOO_ENV = "KVAE_ZOO"
DEFAULT_MODEL = "fmnist_two_stage_computed"
"""The model the service serves by default, shipped inside the package."""
PACKAGED_ZOO = Path(__file__).resolve().parent / "_zoo"
"""Where an installed wheel keeps its zoo (the manifest and DEFAULT_MODEL)."""
CHECKOUT_ZOO = Path(__file__).resolve().parent.parent / "zoo"


class ZooError(KvaeError):
    """An unknown name, a recipe that is not trained, or a model whose files
    are neither in the local zoo nor published."""


def default_dir():
    """The local zoo folder: $KVAE_ZOO, else a checkout's zoo/, else the
    packaged zoo (see the module doc)."""
    if os.environ.get(ZOO_ENV):
        return Path(os.environ[ZOO_ENV])
    if (CHECKOUT_ZOO / MANIFEST).is_file():
        return CHECKOUT_ZOO
    return PACKAGED_ZOO


def manifest(zoo_dir=None):
    """The manifest: {"models": {name: card}}. A missing one is a ZooError
    that says where it looked."""
    path = Path(zoo_dir or default_dir()) / MANIFEST
    if not path.is_file():
        raise ZooError(
            f"no zoo manifest at {path}; set {ZOO_ENV} or pass zoo_dir to the folder that "
            f"holds {MANIFEST}"
        )
    return json.loads(path.read_text())


def trained(zoo_dir=None):
    """Names of the trained models, sorted."""
    return sorted(name for name, card in manifest(zoo_dir)["models"].items() if card.get("trained"))


def recipes(zoo_dir=None):
    """Names of the models that exist only as a training recipe, sorted."""
    models = manifest(zoo_dir)["models"]
    return sorted(name for name, card in models.items() if not card.get("trained"))


def card(name, zoo_dir=None):
    """The manifest entry of a model or recipe; an unknown name is a
    ZooError that lists the names and suggests the nearest."""
    models = manifest(zoo_dir)["models"]
    if name not in models:
        hint = did_you_mean(name, models)
        raise ZooError(
            f"no zoo model named {name!r}.{hint} Trained: {', '.join(trained(zoo_dir))}; "
            f"recipes: {', '.join(recipes(zoo_dir))}"
        )
    return models[name]


def hub_handle(entry):
    """The card's pinned Hub handle (hf://OWNER/NAME@COMMIT), or None while
    the model is not published."""
    return (entry.get("hub") or {}).get("handle")


def locate(name, zoo_dir=None):
    """Where the trained model `name` is: ("folder", Path) in the local zoo,
    or ("hub", handle) once published. A recipe, or a model that is in
    neither place, is a ZooError that says what to do."""
    zoo_dir = Path(zoo_dir or default_dir())
    entry = card(name, zoo_dir)
    if not entry.get("trained"):
        raise ZooError(
            f"{name} is a recipe, not trained here ({entry.get('why_not_trained', '')}). "
            f"Train it with: {entry['command']}; then add it with: python -m kvae.zoo export "
            f"RUN_DIR --name {name}"
        )
    folder = zoo_dir / name
    if (folder / "config.json").is_file():
        return "folder", folder
    handle = hub_handle(entry)
    if handle:
        return "hub", handle
    raise ZooError(
        f"{name} is not in the zoo folder {zoo_dir} and is not published on the Hugging Face "
        f"Hub yet: use a source checkout of kvae (its zoo/ holds every trained model), or set "
        f"{ZOO_ENV} to a folder that holds {name}/"
    )
