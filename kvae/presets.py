"""The preset folder: a trained model as a few named files, verified before
any of them is opened.

    folder/
      config.json     format, version, name, generation options, card, files
      stage1.keras    the stage-1 VAE (loads alone in Keras after `import kvae`)
      stage2.keras    the stage-2 VAE, for a two-stage model

`config.json`'s "files" maps "stage1" (required) and "stage2" (optional) to
{"path", "sha256", "size"}; every path is a plain file name inside the folder.
`read` checks the config strictly (a preset may come from someone else, from
the Hub), `verify` checks each file's size and sha256, and `load` opens the
files with Keras only after both (safe_mode on by default). This module is
the only one that reads or writes the format; `kvae.load` turns a folder into
a `kvae.TwoStageVAE`, `TwoStageVAE.save` writes one.
"""

import json
import re
from pathlib import Path

from kvae import files
from kvae.errors import KvaeError

FORMAT = "kvae.TwoStageVAE"
VERSION = 1
CONFIG = "config.json"
FILE_KEYS = ("stage1", "stage2")
"""The files a preset may hold, in stage order; stage1 is required."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


class PresetError(KvaeError):
    """A folder that is not a valid preset: no or malformed config.json, a
    file key or path that is not allowed, a missing file, or a file whose size
    or sha256 differs from the one recorded."""


def is_preset(path):
    """Whether `path` is a folder whose config.json names the preset format
    (nothing else is checked)."""
    config = Path(path) / CONFIG
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def file_record(path):
    """{"path": the file's name, "sha256", "size"} of a file."""
    path = Path(path)
    return {"path": path.name, "sha256": files.digest(path), "size": path.stat().st_size}


def preset_config(name, latent_noise, latent_scale, card, file_records):
    """A preset's config.json: the format, the generation options, the card and
    {key: `file_record`}."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "latent_noise": latent_noise,
        "latent_scale": latent_scale,
        "card": card,
        "files": file_records,
    }


def save(folder, stages, name, latent_noise, latent_scale, card):
    """Write a preset: each VAE of `stages` ({"stage1": model, "stage2":
    model or absent}) as KEY.keras, then config.json with their records,
    written last and atomically. The `.keras` files keep what the models hold
    (an optimizer only if compiled). Returns the folder's Path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    for key in FILE_KEYS:
        if stages.get(key) is not None:
            path = folder / f"{key}.keras"
            stages[key].save(path)
            records[key] = file_record(path)
    files.write_json(
        folder / CONFIG, preset_config(name, latent_noise, latent_scale, card, records)
    )
    return folder


def _check_path(key, path):
    """A file's path in config.json: a plain file name, nothing that leaves
    the folder."""
    if (
        not isinstance(path, str)
        or path in ("", ".", "..")
        or "/" in path
        or "\\" in path
        or "\0" in path
        or Path(path).name != path
    ):
        raise PresetError(
            f"files.{key}.path must be a plain file name inside the preset folder. "
            f"Received: {path!r}"
        )


def check_config(config, where):
    """The parsed config.json of a preset, checked: the format and version,
    the file keys (stage1 required, stage2 allowed, nothing else), each
    file's path, sha256 and size. Raises PresetError naming `where`."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise PresetError(f"{where} is not a kvae preset config (format {found!r}, not {FORMAT!r})")
    if config.get("version") != VERSION:
        raise PresetError(
            f"{where} has preset version {config.get('version')!r}; this kvae reads version "
            f"{VERSION} (upgrade kvae)"
        )
    records = config.get("files")
    if not isinstance(records, dict) or "stage1" not in records:
        raise PresetError(f"{where} names no stage1 file")
    unknown = sorted(set(records) - set(FILE_KEYS))
    if unknown:
        raise PresetError(
            f"{where} has unknown file key(s) {', '.join(map(repr, unknown))}; a preset holds "
            f"{' and '.join(FILE_KEYS)}"
        )
    for key, record in records.items():
        if not isinstance(record, dict):
            raise PresetError(f"{where}: files.{key} must be an object with path, sha256 and size")
        _check_path(key, record.get("path"))
        if not isinstance(record.get("sha256"), str) or not _SHA256.fullmatch(record["sha256"]):
            raise PresetError(f"{where}: files.{key}.sha256 must be 64 lowercase hex digits")
        size = record.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PresetError(f"{where}: files.{key}.size must be a whole number of bytes")
    return config


def read(folder):
    """The checked config.json of the preset in `folder` (`check_config`)."""
    path = Path(folder) / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PresetError(
            f"{folder} is not a kvae preset: cannot read {path} ({type(error).__name__})"
        ) from error
    return check_config(config, path)


def verify(folder, config):
    """Check that every file of `config` is in `folder` with its recorded
    size and sha256; a PresetError names the file (and both digests)."""
    folder = Path(folder)
    for key in FILE_KEYS:
        record = config["files"].get(key)
        if record is None:
            continue
        path = folder / record["path"]
        if not path.is_file():
            raise PresetError(f"{path} is missing (files.{key} of {folder / CONFIG})")
        size = path.stat().st_size
        if size != record["size"]:
            raise PresetError(
                f"size mismatch for {path}: {CONFIG} records {record['size']} bytes, the file "
                f"has {size}"
            )
        found = files.digest(path)
        if found != record["sha256"]:
            raise PresetError(
                f"sha256 mismatch for {path}: {CONFIG} records {record['sha256']}, the file "
                f"has {found}"
            )


def load(folder, compile=False, safe_mode=True):
    """Read a preset: config.json checked, every file verified, then the VAEs
    loaded with Keras. Returns (the checked config, the keyword arguments of
    `kvae.TwoStageVAE`: stage1, stage2, latent_noise, latent_scale, name,
    card)."""
    from kvae import saving  # Keras: only once a preset is really loaded

    config = read(folder)
    verify(folder, config)
    stages = {key: None for key in FILE_KEYS}
    for key, record in config["files"].items():
        stages[key] = saving.load_keras(
            Path(folder) / record["path"], compile=compile, safe_mode=safe_mode
        )
    return config, {
        **stages,
        "latent_noise": config.get("latent_noise"),
        "latent_scale": config.get("latent_scale"),
        "name": config.get("name"),
        "card": dict(config.get("card") or {}),
    }
