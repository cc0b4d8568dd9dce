"""`kvae.load(spec)`: the one function that turns a spec into a model.

- a `.keras` file: the `kvae.VAE` it holds (with its optimizer unless
  compile=False);
- a preset folder: a `kvae.TwoStageVAE` (`kvae.presets`: config checked,
  files verified);
- `hf://OWNER/NAME[@REVISION]`: a `kvae.TwoStageVAE` from the Hub
  (`kvae.hub`), verified, safe_mode always on;
- a zoo name: a `kvae.TwoStageVAE` from the local zoo folder, else the
  cache, else the Hub (`kvae.catalog`).

Every model that is not a plain `.keras` file carries its card, with
`card["provenance"]` saying where it was loaded from (for the Hub: the
repository, the requested and the resolved revision).
"""

import os
from pathlib import Path

from kvae import catalog, hub, presets, runs, saving
from kvae.two_stage import TwoStageVAE


def load(
    spec,
    compile=None,
    safe_mode=True,
    zoo_dir=None,
    endpoint=None,
    cache_dir=None,
    token=None,
):
    """The model `spec` names (see the module doc).

    Args:
        spec: a path (str or PathLike) of a `.keras` file or a preset folder,
            a Hub handle `hf://OWNER/NAME[@REVISION]`, or a zoo name.
        compile: restore the optimizer (a `.keras` file only; default True
            there, so that training resumes; presets hold no optimizer).
        safe_mode: Keras's safe_mode for local files; a model from the Hub
            is always loaded with it.
        zoo_dir: the local zoo folder for zoo names (default
            `kvae.catalog.default_dir()`).
        endpoint, cache_dir, token: for the Hub (defaults: huggingface.co,
            the Hugging Face cache, your stored login).

    Raises:
        FileNotFoundError: a path that does not exist.
        kvae.presets.PresetError: a preset that fails its checks.
        kvae.hub.HubError: a malformed handle, a missing repository or
            revision, or a preset not cached while offline.
        kvae.catalog.ZooError: an unknown zoo name, a recipe, or a model
            that is neither local nor published.
    """
    hub_options = {"endpoint": endpoint, "cache_dir": cache_dir, "token": token}
    if hub.is_handle(spec):
        if not safe_mode:
            raise ValueError(f"safe_mode cannot be turned off for a model from the Hub ({spec})")
        return _from_hub(spec, hub_options)
    path = Path(os.fspath(spec))
    if path.is_dir():
        if presets.is_preset(path):
            return _from_preset(path, safe_mode, {"source": str(path)})
        if runs.is_run(path):
            raise ValueError(
                f"{path} is a training run folder: load one of its checkpoints "
                f"({path / 'stage1.keras'}), or evaluate it with python -m kvae.evaluate {path}"
            )
        raise presets.PresetError(f"{path} is a folder without a kvae preset config.json")
    if path.is_file():
        return saving.load_keras(
            path, compile=True if compile is None else compile, safe_mode=safe_mode
        )
    if _looks_like_a_path(str(spec)):
        raise FileNotFoundError(
            f"{path} does not exist (kvae.load takes a .keras file, a preset folder, "
            "hf://OWNER/NAME[@REVISION] or a zoo name)"
        )
    where, location = catalog.locate(str(spec), zoo_dir)
    if where == "folder":
        return _from_preset(location, safe_mode, {"source": f"zoo:{spec}", "folder": str(location)})
    return _from_hub(location, hub_options)


def _looks_like_a_path(text):
    return text.endswith(".keras") or os.sep in text or "/" in text or text.startswith(".")


def _from_preset(folder, safe_mode, provenance):
    config, arguments = presets.load(folder, safe_mode=safe_mode)
    model = TwoStageVAE(**arguments)
    model.card["provenance"] = {
        **provenance,
        "files": {
            key: {**record, "path": str(Path(folder) / record["path"])}
            for key, record in config["files"].items()
        },
    }
    return model


def _from_hub(handle, options):
    folder, provenance = hub.download(handle, **options)
    return _from_preset(folder, True, provenance)
