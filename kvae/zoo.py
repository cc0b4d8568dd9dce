"""The model zoo: trained checkpoints and recipes, by name.

    import kvae
    kvae.zoo.list()       # the trained, loadable models
    kvae.zoo.recipes()    # models that exist only as a training recipe
    model = kvae.zoo.load("fmnist_two_stage_computed")
    images = model.generate(16, mode="mean", seed=0)   # through both stages

The zoo's catalogue (`kvae.catalog`) is `manifest.json`: one card per model.
A trained model is a preset folder (`kvae.presets`): stage1.keras (and
stage2.keras), config.json (generation options, file digests and the card),
with metrics.json (`kvae.evaluate` on the 10,000 test images), samples.png
and reconstructions.png beside them. `load` finds it in the local zoo folder
(a checkout's `zoo/`, $KVAE_ZOO, or the zoo inside the installed package,
which holds the default model), else in the Hugging Face cache or on the Hub
through the card's pinned handle once it is published. Every `.keras` file
also loads with plain Keras once kvae's classes are registered: `import
kvae.models`, then `keras.saving.load_model(path)`.

The card of a model holds its name, dataset, description, configuration,
the exact training command, epochs, the evaluation metrics, each file's
sha256 and size, the device that trained it, its Hub handle once published,
and `check`: the metrics of `kvae.evaluate` on a fixed 500-image subset,
which the tests reproduce. Recipe entries hold the training command, what
to expect and why they are not trained here.

    python -m kvae.zoo export RUN_DIR --name NAME ...   # add a finished run
    python -m kvae.zoo publish --owner OWNER            # push every trained model
"""

import json
import shutil
import sys
import time
from pathlib import Path

from kvae import catalog, cli, devices, files, hub, presets, quiet, runs
from kvae import recipes as training_recipes
from kvae.catalog import MANIFEST, ZOO_ENV, ZooError, card, default_dir, manifest, recipes
from kvae.config import RunConfig
from kvae.data import attributions
from kvae.errors import KvaeError

# kvae.evaluation, kvae.loader, kvae.saving, kvae.two_stage and
# kvae.zoo_readme load Keras (and so TensorFlow): they are imported where a
# model is loaded or evaluated, so that `python -m kvae.zoo list` and
# --help answer at once (issue 34).

CHECK_IMAGES = 500
"""Size of the fixed subset (the first test images) whose metrics the
manifest records and the tests reproduce."""

__all__ = [
    "MANIFEST",
    "ZOO_ENV",
    "ZooError",
    "card",
    "default_dir",
    "export",
    "list",
    "load",
    "manifest",
    "publish",
    "recipes",
    "refresh",
]


def list(zoo_dir=None):  # noqa: A001 (the keras-hub style name the issue asks for)
    """Names of the trained models, sorted."""
    return catalog.trained(zoo_dir)


def load(name, zoo_dir=None, endpoint=None, cache_dir=None, token=None):
    """The trained zoo model `name` as a `kvae.TwoStageVAE` (one or two
    stages, with its card): `kvae.load(name)`. Its files are checked before
    Keras opens them (safe_mode); a recipe-only name is a ZooError that
    gives the command that trains it."""
    from kvae import loader

    catalog.card(name, zoo_dir)  # a name, not a path: unknown names fail here
    return loader.load(name, zoo_dir=zoo_dir, endpoint=endpoint, cache_dir=cache_dir, token=token)


def preset_config(entry):
    """The preset config.json of a trained entry, from its card: the folder
    then loads as a `kvae.TwoStageVAE` on its own."""
    return presets.preset_config(
        entry["name"],
        entry["generation"]["latent_noise"],
        entry["generation"].get("latent_scale"),
        entry,
        {
            stage: {**spec, "path": Path(spec["path"]).name}
            for stage, spec in entry["files"].items()
        },
    )


# -- export (python -m kvae.zoo export) -------------------------------------------


def _write_manifest(zoo_dir, data):
    """Write the manifest (names sorted), each trained model's preset
    config.json and the README, all rendered from the manifest."""
    from kvae import zoo_readme

    # the recipes' cards come from kvae/recipes.py, their one source
    data["models"] = dict(sorted({**data["models"], **training_recipes.zoo_cards()}.items()))
    for entry in data["models"].values():
        if entry.get("trained"):
            entry.setdefault("hub", {"handle": None, "published": False})
    files.write_json(zoo_dir / MANIFEST, data)
    for name, entry in data["models"].items():
        if entry.get("trained") and (zoo_dir / name).is_dir():
            files.write_json(zoo_dir / name / presets.CONFIG, preset_config(entry))
    (zoo_dir / "README.md").write_text(zoo_readme.render(data))


def card_metrics():
    """The evaluation numbers a card repeats (metrics.json has them all), as
    the evaluators name them (`kvae.evaluation.card_metrics`)."""
    from kvae import evaluation

    return tuple(evaluation.card_metrics())


def _backend():
    import keras

    return keras.backend.backend()


def _evaluate_into(model, target, config, scratch, fid):
    """Evaluate a zoo model in-process (`kvae.evaluation.evaluate`): the full
    test split into target/metrics.json, samples.png and reconstructions.png,
    then the first `CHECK_IMAGES` examples. Returns the card's fields that
    come from evaluation (metrics, evaluation, check)."""
    from kvae import evaluation

    full = evaluation.load_examples(config, "test", evaluation.FULL_EVALUATION, model.data_shape)
    # as a user would run it from the folder that holds the zoo
    command = (
        f"python -m kvae.evaluate {target.parent.name}/{target.name} --fid {fid} "
        f"--out {target.name}-eval"
    )
    record = evaluation.evaluate(model, full, config.dataset, out=scratch, fid=fid)
    metrics = {"command": command, **record}
    # Loaded as `kvae.evaluate --num-images 500` loads them (for synthetic data
    # a 500-point sample is not the first 500 points of a 10,000-point one).
    few = evaluation.load_examples(config, "test", CHECK_IMAGES, model.data_shape)
    check = evaluation.evaluate(
        model, few, config.dataset, fid="off", gain_images=CHECK_IMAGES, out=None
    )
    files.write_json(scratch / "metrics.json", metrics)
    shutil.copy(scratch / "metrics.json", target / "metrics.json")
    grid = "samples_stage2.png" if model.stage2 is not None else "samples_mean.png"
    shutil.copy(scratch / grid, target / "samples.png")
    shutil.copy(scratch / "reconstructions.png", target / "reconstructions.png")
    return {
        "metrics": {key: metrics.get(key) for key in card_metrics()},
        "evaluation": command,
        "check": {
            "num_images": CHECK_IMAGES,
            "seed": 0,
            "split": "test",
            "mse": check["mse"],
            "mse_from_mu": check["mse_from_mu"],
            "elbo_nats": check["elbo_nats"],
        },
    }


def refresh(name, zoo_dir=None, fid="auto"):
    """Evaluate a shipped model again (after a change of the evaluation
    protocol) and rewrite its metrics, check and pictures; the weights and
    the rest of the card stay. Returns the entry."""
    zoo_dir = Path(zoo_dir or default_dir())
    entry = card(name, zoo_dir)
    model = load(name, zoo_dir)
    scratch = zoo_dir / name / "refresh-eval"
    config = RunConfig.from_json(entry["config"])
    entry.update(_evaluate_into(model, zoo_dir / name, config, scratch, fid))
    entry["refreshed"] = time.strftime("%Y-%m-%d")
    shutil.rmtree(scratch)
    data = manifest(zoo_dir)
    data["models"][name] = entry
    _write_manifest(zoo_dir, data)
    return entry


def export(run_dir, name, description, command, zoo_dir=None, fid="auto", notes=None):
    """Add a finished `kvae.train` run to the zoo as `name`.

    Copies the final weights without the optimizer state to
    zoo/<name>/stage1.keras (and stage2.keras), the run's config.json;
    evaluates the copies with `kvae.evaluate` (the full test split, then the
    first `CHECK_IMAGES` images, both with seed 0) into metrics.json and
    samples.png; and writes the manifest entry (with `notes`, what a user
    should know about the model, when given). Returns the entry.
    """
    from kvae import saving
    from kvae.two_stage import TwoStageVAE

    run_dir, zoo_dir = Path(run_dir), Path(zoo_dir or default_dir())
    run = runs.RunFolder(run_dir)
    config = run.read_config()
    state = json.loads(run.file("state.json").read_text())
    stages = [saving.load_keras(path, compile=False) for path in run.finished_checkpoints()]
    model = TwoStageVAE(*stages, name=name)  # without the optimizer: compile=False
    target = zoo_dir / name
    model.save(target)
    saved_files = presets.read(target)["files"]
    evaluated = _evaluate_into(model, target, config, run_dir / "zoo-eval", fid)
    entry = {
        "trained": True,
        "name": name,
        "dataset": config.dataset,
        "description": description,
        "command": command,
        "stages": len(model.stages),
        "epochs": {
            "stage1": runs.epochs_done(state, 1),
            "stage2": runs.epochs_done(state, 2) if model.stage2 is not None else 0,
        },
        "steps_per_epoch": config.steps_per_epoch,
        "batch_size": config.batch_size,
        "config": config.to_json(),
        "training_seconds": round(sum(float(row["seconds"]) for row in run.read_metrics())),
        "generation": {"latent_noise": model.latent_noise},
        # the records save() wrote (sha256 computed once), paths from the zoo
        "files": {
            stage: {**spec, "path": f"{name}/{spec['path']}"} for stage, spec in saved_files.items()
        },
        "samples": f"{name}/samples.png",
        "reconstructions": f"{name}/reconstructions.png",
        **evaluated,
        "trained_on": {"device": devices.device_name(), "backend": _backend()},
        "exported": time.strftime("%Y-%m-%d"),
        "attributions": attributions(config.dataset),
    }
    if notes:
        entry["notes"] = notes
    path = zoo_dir / MANIFEST
    data = json.loads(path.read_text()) if path.is_file() else {"models": {}}
    data["models"][name] = entry
    _write_manifest(zoo_dir, data)
    return entry


def publish(owner, zoo_dir=None, names=None, endpoint=None, token=None, private=False):
    """Push every trained model of the local zoo (or those in `names`) to
    hf://OWNER/NAME and write each returned pinned handle into its card.
    Returns {name: handle}."""
    zoo_dir = Path(zoo_dir or default_dir())
    data = manifest(zoo_dir)
    published = {}
    for name in names or catalog.trained(zoo_dir):
        entry = catalog.card(name, zoo_dir)
        where, folder = catalog.locate(name, zoo_dir)
        if where != "folder":
            raise ZooError(f"{name} has no files in {zoo_dir} to publish")
        handle = hub.push(
            folder,
            f"hf://{owner}/{name}",
            private=private,
            message=f"kvae zoo model {name}",
            token=token,
            endpoint=endpoint,
        )
        entry["hub"] = {"handle": handle, "published": time.strftime("%Y-%m-%d")}
        data["models"][name] = entry
        published[name] = handle
        _write_manifest(zoo_dir, data)  # after each push: nothing pushed is lost
    return published


def main(argv=None):
    parser = cli.Parser(prog="python -m kvae.zoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the trained models and the recipes")
    listing.add_argument("--zoo", type=Path)
    readme = commands.add_parser("readme", help="rewrite the zoo's README.md from its manifest")
    readme.add_argument("--zoo", type=Path)
    refreshing = commands.add_parser(
        "refresh", help="evaluate shipped models again and rewrite their metrics and pictures"
    )
    refreshing.add_argument("names", nargs="+")
    refreshing.add_argument("--zoo", type=Path)
    refreshing.add_argument("--fid", choices=("auto", "on", "off"), default="auto")
    exporting = commands.add_parser("export", help="add a finished training run to the zoo")
    exporting.add_argument("run_dir", type=Path)
    exporting.add_argument("--name", required=True)
    exporting.add_argument("--description", required=True)
    exporting.add_argument(
        "--command",
        dest="train_command",
        required=True,
        help="the exact training command, for the card",
    )
    exporting.add_argument("--zoo", type=Path)
    exporting.add_argument("--fid", choices=("auto", "on", "off"), default="auto")
    exporting.add_argument("--notes", help="what a user should know, for the card")
    publishing = commands.add_parser(
        "publish", help="push trained models to the Hugging Face Hub and pin them in the manifest"
    )
    publishing.add_argument("--owner", required=True, help="the Hub user or organisation")
    publishing.add_argument("names", nargs="*", help="default: every trained model")
    publishing.add_argument("--zoo", type=Path)
    publishing.add_argument("--private", action="store_true")
    publishing.add_argument("--endpoint", help="another Hub than huggingface.co")
    try:
        args = parser.parse_args(argv)
        if args.command in ("refresh", "export", "publish"):
            quiet.start_backend()  # these load models: TensorFlow's start-up lines held back
        if args.command == "list":
            for name in list(args.zoo):
                print(f"{name}\ttrained\t{card(name, args.zoo)['description']}")
            for name in recipes(args.zoo):
                print(f"{name}\trecipe\t{card(name, args.zoo)['description']}")
            return 0
        if args.command == "readme":
            _write_manifest(Path(args.zoo or default_dir()), manifest(args.zoo))
            return 0
        if args.command == "publish":
            for name, handle in publish(
                args.owner, args.zoo, args.names, args.endpoint, private=args.private
            ).items():
                print(f"{name}\t{handle}")
            return 0
        if args.command == "refresh":
            for name in args.names:
                entry = refresh(name, args.zoo, args.fid)
                print(json.dumps({"name": name, "check": entry["check"]}))
            return 0
        if not (args.run_dir / "state.json").is_file():
            raise cli.UsageError(f"{args.run_dir} is not a kvae.train run (no state.json)")
        entry = export(
            args.run_dir,
            args.name,
            args.description,
            args.train_command,
            args.zoo,
            args.fid,
            args.notes,
        )
    except (cli.UsageError, KvaeError) as error:
        return cli.report("kvae.zoo", error)
    print(json.dumps({key: entry[key] for key in ("name", "files", "check")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
