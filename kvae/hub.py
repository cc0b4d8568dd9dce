"""Presets on the Hugging Face Hub: `hf://OWNER/NAME[@REVISION]` handles.

    kvae.load("hf://OWNER/NAME@COMMIT")        # pinned: one commit, verified
    python -m kvae.hub push PATH hf://OWNER/NAME [--private] [--revision BRANCH] [--message TEXT]
    python -m kvae.hub download hf://OWNER/NAME@COMMIT   # fill the cache (an image build)

`download` fetches only a preset's files (config.json, then the files it
names) at one resolved commit into the Hugging Face cache, and returns the
snapshot folder with the provenance (repository, requested and resolved
revision). A 40-hex commit that is fully cached is read with no request at
all (`local_files_only` first); a branch, or no revision, is resolved on the
Hub and logged with the handle that pins it. `kvae.load` then checks
config.json strictly and every file's size and sha256 before Keras opens
it, always with safe_mode: the Hub client checks sizes only, so a cached
file edited by hand would otherwise load.

`push` takes a preset folder, a `.keras` file (pushed as a one-stage preset,
without its optimizer) or a finished `kvae.train` run folder; it re-verifies
the files, writes the model card README.md into a temporary copy (never into
your folder), uploads, and returns the pinned handle. The token is the
argument, else $HF_TOKEN or your stored `huggingface-cli login`; the handle
names the owner, nothing is guessed.

`huggingface_hub` is the optional extra `pip install "kvae[hub]"`, imported
only here. Pass `endpoint=` to talk to another Hub than huggingface.co
(the client reads $HF_ENDPOINT once, when it is first imported).
"""

import argparse
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path

from kvae import cli, presets, quiet, runs
from kvae.errors import KvaeError

HANDLE = re.compile(
    r"hf://(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?:@(?P<revision>[A-Za-z0-9][A-Za-z0-9._/-]*))?"
)
COMMIT = re.compile(r"[0-9a-f]{40}")
EXTRA = 'pip install "kvae[hub]"'
PICTURES = ("samples.png", "reconstructions.png")
EXTRAS = ("metrics.json", *PICTURES)
"""Files of a zoo folder that travel with a pushed preset (not downloaded by
`download`, which fetches only what loading needs)."""

log = logging.getLogger("kvae.hub")


class HubError(KvaeError):
    """A malformed handle, a repository or revision the Hub does not have, a
    preset that is not cached while offline, a failed upload, or the missing
    extra; the message is one line."""


def parse(handle):
    """(repository id, revision or None) of `hf://OWNER/NAME[@REVISION]`."""
    match = HANDLE.fullmatch(str(handle))
    if match is None:
        raise HubError(
            f"{handle!r} is not a Hub handle: write hf://OWNER/NAME or hf://OWNER/NAME@REVISION "
            "(a branch, a tag or a 40-hex commit)"
        )
    return match["repo"], match["revision"]


def is_handle(spec):
    return isinstance(spec, str) and spec.startswith("hf://")


def _client():
    try:
        import huggingface_hub
    except ImportError as error:
        raise HubError(f"hf:// handles need huggingface_hub: {EXTRA}") from error
    return huggingface_hub


def _snapshot(hub, repo_id, revision, patterns, offline_first, options):
    """The cache folder of `patterns` at `revision` (snapshots/<commit>): from
    the cache alone first when `offline_first`, else (or when that misses)
    from the Hub."""
    if offline_first:
        try:
            return Path(
                hub.snapshot_download(
                    repo_id,
                    revision=revision,
                    allow_patterns=patterns,
                    local_files_only=True,
                    **options,
                )
            )
        except (hub.errors.LocalEntryNotFoundError, OSError, ValueError):
            pass  # not (fully) cached: ask the Hub
    return Path(
        hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns, **options)
    )


def download(handle, endpoint=None, cache_dir=None, token=None):
    """Fetch the preset of `handle` into the Hugging Face cache: config.json
    at the resolved commit, then the files it names at that same commit.
    Returns (the snapshot folder, provenance). The files are not verified
    here: `kvae.presets.load` does that before Keras opens them."""
    repo_id, revision = parse(handle)
    hub = _client()
    options = {"cache_dir": cache_dir, "endpoint": endpoint, "token": token}
    pinned = revision is not None and COMMIT.fullmatch(revision) is not None
    try:
        folder = _snapshot(hub, repo_id, revision, [presets.CONFIG], pinned, options)
        config = presets.read(folder)
        names = [record["path"] for record in config["files"].values()]
        commit = folder.name  # snapshots/<commit>
        folder = _snapshot(hub, repo_id, commit, names, True, options)
    except hub.errors.RepositoryNotFoundError as error:
        raise HubError(
            f"{handle}: the Hub has no repository {repo_id} (or it is private)"
        ) from error
    except hub.errors.RevisionNotFoundError as error:
        raise HubError(f"{handle}: repository {repo_id} has no revision {revision!r}") from error
    except hub.errors.LocalEntryNotFoundError as error:
        raise HubError(
            f"{handle} is not in the Hugging Face cache and the Hub cannot be reached (offline "
            f"or HF_HUB_OFFLINE=1): run `python -m kvae.hub download {handle}` once online"
        ) from error
    except hub.errors.HfHubHTTPError as error:
        raise HubError(f"{handle}: the Hub answered {_first_line(error)}") from error
    provenance = {
        "source": handle,
        "repo_id": repo_id,
        "requested_revision": revision or "main",
        "resolved_revision": commit,
        "endpoint": endpoint or hub.constants.ENDPOINT,
    }
    if not pinned:
        log.warning(
            "%s resolved to commit %s; pin it with hf://%s@%s", handle, commit, repo_id, commit
        )
    return folder, provenance


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# -- push ---------------------------------------------------------------------------------------


def stage_preset(path, target):
    """Write into the empty folder `target` the preset to push for `path` (a
    preset folder, a `.keras` file, or a finished run folder), verified;
    returns its config."""
    from kvae import saving  # Keras: not for --help or a download
    from kvae.two_stage import TwoStageVAE

    path, target = Path(path), Path(target)
    if presets.is_preset(path):
        config = presets.read(path)
        presets.verify(path, config)
        for record in config["files"].values():
            shutil.copy2(path / record["path"], target / record["path"])
        shutil.copy2(path / presets.CONFIG, target / presets.CONFIG)
        for extra in EXTRAS:
            if (path / extra).is_file():
                shutil.copy2(path / extra, target / extra)
        return config
    if path.is_file() and path.suffix == ".keras":
        model = TwoStageVAE(saving.load_keras(path, compile=False), name=path.stem)
    elif runs.is_run(path):
        run = runs.RunFolder(path)
        stages = [saving.load_keras(file, compile=False) for file in run.finished_checkpoints()]
        if not stages:
            raise HubError(f"{path} is a run folder with no finished epoch yet")
        config = run.read_config()
        card = {"name": path.name, "dataset": config.dataset, "config": config.to_json()}
        model = TwoStageVAE(*stages, name=path.name, card=card)
    else:
        raise HubError(f"{path} is not a preset folder, a .keras file or a kvae.train run folder")
    model.save(target)
    return presets.read(target)


def _metric_lines(card):
    metrics = card.get("metrics") or {}
    lines = []
    for key, words in (
        ("mse", "MSE of reconstructions from a sampled z"),
        ("elbo_nats", "ELBO, nats per example"),
        ("bits_per_dim", "negative ELBO in bits per dimension"),
        ("variance_law", "variance law (Asperti & Trentin Eq. 7)"),
        ("inactive_latents", "inactive latents"),
    ):
        if metrics.get(key) is not None:
            lines.append(f"| {words} | {metrics[key]:.6g} |")
    return lines


def model_card(config, handle, pictures):
    """The README.md of a pushed preset: what it is, how it was trained, its
    metrics with their protocol, its pictures, licences and the two lines
    that load it."""
    card = config.get("card") or {}
    name = config.get("name") or card.get("name") or handle
    trained_on = card.get("trained_on") or {}
    lines = [
        "---",
        "library_name: kvae",
        f"license: {card.get('license', 'apache-2.0')}",
        "tags: [kvae, keras, vae, variational-autoencoder]",
        "---",
        "",
        f"# {name}",
        "",
        (card.get("description") or "A kvae variational autoencoder") + ".",
        f"Stages: {len(config['files'])}; data: {card.get('dataset', 'not recorded')}.",
        "",
        "```python",
        "import kvae  # pip install 'kvae[hub]'",
        f'model = kvae.load("{handle}")',
        "```",
        "",
        "## Training",
        "",
        f"- Command: `{card.get('command', 'not recorded')}`",
        f"- Hardware: {trained_on.get('device', 'not recorded')} "
        f"({trained_on.get('backend', 'backend not recorded')})",
    ]
    if card.get("training_time"):
        lines.append(f"- Time: {card['training_time']}")
    if card.get("epochs"):
        lines.append(f"- Epochs: {card['epochs']}")
    metric_lines = _metric_lines(card)
    if metric_lines:
        lines += [
            "",
            "## Metrics",
            "",
            f"Measured with `{card.get('evaluation', 'kvae.evaluate')}`.",
            "",
        ]
        lines += ["| metric | value |", "|---|---|", *metric_lines]
    if pictures:
        lines += ["", "## Pictures", ""] + [f"![{picture}]({picture})" for picture in pictures]
    lines += ["", "## Licence and data", ""]
    lines.append(f"- Weights: {card.get('license', 'Apache-2.0')} (kvae).")
    for attribution in card.get("attributions", []):
        lines.append(f"- {attribution}")
    lines += [
        "",
        "Every file's sha256 is in config.json; kvae checks them before Keras opens a file.",
        "",
    ]
    return "\n".join(lines)


def push(path, handle, private=False, revision=None, message=None, token=None, endpoint=None):
    """Push `path` (see `stage_preset`) to the repository of `handle`
    (hf://OWNER/NAME, created if needed, on branch `revision`, default main).
    Returns the pinned handle hf://OWNER/NAME@COMMIT."""
    repo_id, pinned = parse(handle)
    if pinned:
        raise HubError(
            f"push takes hf://OWNER/NAME; give the branch as the revision, not {pinned!r}",
            argument="revision",
        )
    hub = _client()
    api = hub.HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="kvae-push-") as scratch:
        staged = Path(scratch)
        config = stage_preset(path, staged)
        pictures = [picture for picture in PICTURES if (staged / picture).is_file()]
        (staged / "README.md").write_text(model_card(config, f"hf://{repo_id}", pictures))
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(
                folder_path=staged,
                repo_id=repo_id,
                revision=revision,
                commit_message=message or f"kvae preset {config.get('name') or repo_id}",
            )
        except hub.errors.HfHubHTTPError as error:
            raise HubError(
                f"pushing to {repo_id}: the Hub answered {_first_line(error)}"
            ) from error
    return f"hf://{repo_id}@{info.oid}"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kvae.hub", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pushing = commands.add_parser("push", help="push a preset, a .keras file or a run folder")
    pushing.add_argument("path", type=Path)
    pushing.add_argument("handle", help="hf://OWNER/NAME")
    pushing.add_argument("--private", action="store_true")
    pushing.add_argument("--revision", help="the branch to commit to (default main)")
    pushing.add_argument("--message", help="the commit message")
    pushing.add_argument("--endpoint", help="another Hub than huggingface.co")
    fetching = commands.add_parser("download", help="fetch a preset into the Hugging Face cache")
    fetching.add_argument("handle", help="hf://OWNER/NAME[@REVISION]")
    fetching.add_argument("--endpoint", help="another Hub than huggingface.co")
    fetching.add_argument("--cache-dir", type=Path, help="default: the Hugging Face cache")
    args = parser.parse_args(argv)
    if args.command == "push":
        quiet.start_backend()  # push loads the model: TensorFlow's start-up lines held back
    try:
        if args.command == "push":
            print(
                push(
                    args.path,
                    args.handle,
                    args.private,
                    args.revision,
                    args.message,
                    endpoint=args.endpoint,
                )
            )
        else:
            folder, provenance = download(args.handle, args.endpoint, args.cache_dir)
            presets.verify(folder, presets.read(folder))
            print(f"{folder} (commit {provenance['resolved_revision']}, verified)")
    except (KvaeError, FileNotFoundError) as error:
        return cli.report("kvae.hub", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
