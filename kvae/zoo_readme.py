"""zoo/README.md, rendered from the manifest only (`python -m kvae.zoo
readme`): the table of trained models, the recipes, and one card per model.
The metric columns are the evaluators' card numbers (`kvae.evaluation`),
the same records the cards hold."""

from kvae import catalog, evaluation

TABLE_METRICS = ("mse", "bits_per_dim", "variance_law", "fd_fmnist", "fid", "inactive_latents")
"""The card numbers the table shows, in order."""


def epoch_length(entry):
    """What one epoch of a card's training was: fixed steps, or full passes."""
    if entry.get("steps_per_epoch"):
        return f"{entry['steps_per_epoch']} batches of {entry['batch_size']}"
    return f"one pass over the training data in batches of {entry['batch_size']}"


def number(value, digits=4):
    return "" if value is None else f"{value:.{digits}g}"


def size_mib(entry):
    return sum(spec["size"] for spec in entry["files"].values()) / 2**20


def hub_text(entry):
    handle = catalog.hub_handle(entry)
    return f"`{handle}`" if handle else "not published yet"


def metric_text(key, metrics):
    """One table cell: a distance's REC / GEN-1 / GEN-2, the inactive count
    of all latents, or the number."""
    value = metrics.get(key)
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        parts = [number(value.get(name), 3) for name in ("rec", "gen1", "gen2") if name in value]
        return " / ".join(parts) or "n/a"
    if key == "inactive_latents":
        return f"{value} of {value + metrics['active_latents']}"
    return number(value)


def render(data):
    """zoo/README.md from the manifest {"models": {name: card}}."""
    models = data["models"]
    trained = [entry for entry in models.values() if entry.get("trained")]
    recipes = [entry for entry in models.values() if not entry.get("trained")]
    lines = _introduction() + _trained_table(trained) + _recipe_table(recipes)
    lines += ["", "## Model cards"]
    for entry in trained:
        lines += _card(entry)
    return "\n".join(lines) + "\n"


def _introduction():
    return [
        "# The kvae model zoo",
        "",
        "Generated from `manifest.json` by `python -m kvae.zoo readme`; every number below "
        "is copied from the model's `metrics.json`, written by `python -m kvae.evaluate` on "
        "the shipped files (10,000 test images, seed 0).",
        "",
        "```python",
        "import kvae",
        'model = kvae.zoo.load("fmnist_two_stage_computed")  # files verified, safe_mode',
        'images = model.generate(16, mode="mean", seed=0)     # through both stages',
        "```",
        "",
        "Plain Keras opens a model's `.keras` files once kvae's classes are registered: "
        '`import kvae.models`, then `keras.saving.load_model("zoo/fmnist_mse/stage1.keras")`.',
    ]


def _trained_table(trained):
    names = evaluation.card_metrics()
    columns = [names[key] for key in TABLE_METRICS]
    lines = [
        "",
        "## Trained models",
        "",
        "| name | dataset | stages | epochs (1 / 2) | "
        + " | ".join(columns)
        + " | MiB | trained on | on the Hub |",
        "|---" * (len(columns) + 7) + "|",
    ]
    for entry in trained:
        metrics = entry["metrics"]
        cells = [metric_text(key, metrics) for key in TABLE_METRICS]
        lines.append(
            f"| [{entry['name']}](#{entry['name']}) | {entry['dataset']} | {entry['stages']} | "
            f"{entry['epochs']['stage1']} / {entry['epochs']['stage2'] or '-'} | "
            + " | ".join(cells)
            + f" | {size_mib(entry):.1f} | {entry['trained_on']['device']} | {hub_text(entry)} |"
        )
    return lines + [
        "",
        "FD-fmnist and FID are REC / GEN-1 / GEN-2 (docs/evaluation.md); n/a where the model's "
        "data has no such network here.",
        "",
        f"Total: {sum(size_mib(entry) for entry in trained):.1f} MiB of checkpoints. "
        "`kvae.zoo.load` reads a model from this folder (a source checkout, $KVAE_ZOO, or the "
        "default model inside the installed package), else from the Hugging Face cache or the "
        "Hub at its pinned commit (`python -m kvae.zoo publish` pins them).",
    ]


def _recipe_table(recipes):
    lines = [
        "",
        "## Recipes (not trained here)",
        "",
        "`kvae.zoo.load` on one of these names raises an error with its command. Each FID "
        "names the protocol it was measured under: dai2019 or asperti2020, the two ways the "
        "papers feed the same Inception graph (docs/evaluation.md); `python -m kvae.evaluate` "
        "uses the recipe's protocol by default.",
        "",
        "| name | command | the paper's numbers | source | time on one GPU |",
        "|---|---|---|---|---|",
    ]
    for entry in recipes:
        protocols = entry.get("expected_fid_protocol", {})
        expected = ", ".join(
            f"{key} {value}" + (f" ({protocols[key]})" if key in protocols else "")
            for key, value in entry["expected"].items()
        )
        lines.append(
            f"| {entry['name']} | `{entry['command']}` | {expected} | "
            f"{entry['expected_source']} | {entry['expected_gpu_time']} |"
        )
    return lines


def _card(entry):
    metrics, epochs = entry["metrics"], entry["epochs"]
    stage2 = f", {epochs['stage2']} stage-2 epochs" if entry["stages"] == 2 else ""
    minutes = entry.get("training_seconds")
    took = f", {minutes / 60:.0f} min" if minutes else ""
    files = "; ".join(
        f"`{spec['path']}` ({spec['size'] / 2**20:.1f} MiB, sha256 `{spec['sha256'][:16]}...`)"
        for spec in entry["files"].values()
    )
    lines = ["", f"### {entry['name']}", "", entry["description"] + ".", ""]
    if entry.get("notes"):
        lines += [f"**Note.** {entry['notes']}", ""]
    lines += [
        f"- Trained with `{entry['command']}` ({epochs['stage1']} stage-1 epochs{stage2} of "
        f"{epoch_length(entry)}) on "
        f"{entry['trained_on']['device']} ({entry['trained_on']['backend']}{took}).",
        f"- Evaluated with `{entry['evaluation']}`.",
        f"- ELBO {number(metrics['elbo_nats'])} nats per example "
        f"({number(metrics['bits_per_dim'])} bits/dim), MSE {number(metrics['mse'])}, "
        f"variance law {number(metrics['variance_law'])}.",
        f"- Check (the tests reproduce it within 1 %): MSE {number(entry['check']['mse'])} on "
        f"the first {entry['check']['num_images']} test examples, seed {entry['check']['seed']}.",
        f"- Files: {files}.",
        f"- On the Hub: {hub_text(entry)}.",
    ]
    for line in entry.get("attributions", []):
        lines.append(f"- Data: {line}")
    through = ", through stage 2" if entry["stages"] == 2 else ""
    return lines + [
        "",
        f"Samples (decoder means{through}) and reconstructions (test images above, "
        "reconstructions below):",
        "",
        f"![samples of {entry['name']}]({entry['samples']}) "
        f"![reconstructions by {entry['name']}]({entry['reconstructions']})",
    ]
