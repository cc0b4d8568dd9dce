"""The run folder of a training run: crash-safe bookkeeping.

A run folder holds config.json (the resolved configuration), state.json
(what is committed), metrics.csv (one row per finished epoch and stage),
stage1.keras / stage2.keras (the latest epoch), stage1_best.keras /
stage2_best.keras (the best validation loss), samples/ and logs/. The end
of an epoch is one atomic commit (`RunFolder.commit`), so a run killed at
any moment resumes from its last finished epoch.
"""

import csv
import json
import os
import shutil
from pathlib import Path

from kvae import files
from kvae.config import RunConfig
from kvae.errors import RunError

METRICS_COLUMNS = (
    "epoch",
    "stage",
    "loss",
    "recon",
    "kl",
    "mse",
    "gamma",
    "active",
    "val_loss",
    "val_mse",
    "variance_law",
    "inactive",
    "lr",
    "seconds",
)
"""metrics.csv: the epoch means of the training terms (kvae.models.METRIC_NAMES),
the validation loss and MSE (empty after the epochs that --validate-every
skips), the variance law (mean over latents of Var(mu) + mean sigma^2) and
the inactive-latent count on the first LATENT_SUMMARY_EXAMPLES validation
examples, the learning rate of the epoch and its wall time."""


def epochs_done(state, stage):
    """The finished epochs of a stage (1 or 2) in a run's state."""
    return state[f"stage{stage}"]["epochs_done"]


def is_run(path):
    """Whether `path` is a run folder of `kvae.train` (config.json and
    state.json)."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "state.json").is_file()


def default_out(config):
    """The default run folder of a configuration: runs/DATASET-GAMMA."""
    dataset = config.dataset.replace(":", "-").replace("/", "_")
    return Path("runs") / f"{dataset}-{config.gamma}"


def same_file(source, target):
    """Make `target` a file with `source`'s bytes: a hard link where the
    file system has them (no second write of a checkpoint: a CelebA one with
    its optimizer is 221 MiB), else a copy. Replacing `source` later (the
    next epoch's rename) leaves `target` as it is."""
    target = Path(target)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class RunFolder:
    """A run folder and its crash-safe bookkeeping.

    The end of an epoch is committed in one atomic write of state.json: the
    new checkpoint is first written beside the old one (stageN.next.keras),
    the metrics row appended, then state.json records the finished epoch
    and the renames still to do, which are then done. A run killed at any
    point resumes from the last committed epoch: pending renames are redone,
    uncommitted files and metrics rows are dropped.
    """

    def __init__(self, path):
        self.path = Path(path)

    def file(self, name):
        return self.path / name

    def checkpoint(self, stage, best=False):
        return self.file(f"stage{stage}{'_best' if best else ''}.keras")

    def exists(self):
        return self.file("config.json").is_file()

    def read_config(self):
        """The run's `RunConfig` (options added since filled in), read
        without touching the folder."""
        try:
            saved = json.loads(self.file("config.json").read_text())
        except (OSError, ValueError) as error:
            raise RunError(f"cannot read {self.file('config.json')}: {error}") from error
        return RunConfig.from_json(saved)

    def finished_checkpoints(self, best=False):
        """The latest (or, with `best`, the best) checkpoint of each stage
        that finished an epoch, in stage order, read without touching the
        folder."""
        state = json.loads(self.file("state.json").read_text())
        return [
            self.checkpoint(stage, best)
            for stage in (1, 2)
            if epochs_done(state, stage) > 0 and self.checkpoint(stage, best).is_file()
        ]

    def create(self, config):
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists() or self.file("state.json").exists():
            raise RunError(
                f"{self.path} already holds a run: resume it, or choose another folder",
                argument="out",
            )
        self.save_config(config)
        self._write_json("state.json", self.empty_state())
        with open(self.file("metrics.csv"), "w", newline="") as handle:
            csv.writer(handle).writerow(METRICS_COLUMNS)

    def save_config(self, config):
        self._write_json("config.json", config.to_json())

    @staticmethod
    def empty_state():
        return {
            "stage1": {"epochs_done": 0, "best_val_loss": None},
            "stage2": {"epochs_done": 0, "best_val_loss": None},
            "pending": [],
        }

    def load(self):
        """(config, state) of an existing run, after recovering from a crash."""
        if not self.exists():
            raise RunError(f"no run to resume in {self.path} (no config.json)", argument="out")
        config = self.read_config()
        try:
            state = json.loads(self.file("state.json").read_text())
        except (OSError, ValueError) as error:
            raise RunError(f"cannot read the run in {self.path}: {error}") from error
        self._finish_renames(state)
        for stray in self.path.glob("*.next.keras"):
            stray.unlink()
        self._truncate_metrics(state)
        return config, state

    def commit(self, state, renames):
        """Make `state` the committed state; then move `renames` (src, dst)."""
        state["pending"] = [[str(src), str(dst)] for src, dst in renames]
        self._write_json("state.json", state)
        self._finish_renames(state)
        state["pending"] = []
        self._write_json("state.json", state)

    def append_metrics(self, row):
        with open(self.file("metrics.csv"), "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(column, "") for column in METRICS_COLUMNS])
            handle.flush()
            os.fsync(handle.fileno())

    def read_metrics(self):
        with open(self.file("metrics.csv"), newline="") as handle:
            return list(csv.DictReader(handle))

    def _finish_renames(self, state):
        for src, dst in state.get("pending", []):
            if Path(src).exists():
                os.replace(src, dst)

    def _truncate_metrics(self, state):
        done = {str(stage): epochs_done(state, stage) for stage in (1, 2)}
        rows = [row for row in self.read_metrics() if int(row["epoch"]) <= done[row["stage"]]]
        unique = {(row["stage"], row["epoch"]): row for row in rows}
        temporary = self.file("metrics.csv.tmp")
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRICS_COLUMNS)
            writer.writeheader()
            writer.writerows(unique.values())
        os.replace(temporary, self.file("metrics.csv"))

    def _write_json(self, name, value):
        files.write_json(self.file(name), value)
