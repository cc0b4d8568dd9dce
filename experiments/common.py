"""Helpers the experiment scripts share: run the training and evaluation
commands (resuming what exists), read their outputs, format tables."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def beside(run_dir, suffix):
    """run_dir's sibling file `<name><suffix>` (Path.with_suffix would cut
    names such as f0.3-seed0 at their first dot)."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"{run_dir.name}{suffix}"


def run(command, log):
    """Run a command, appending its output to `log`; return its exit code."""
    line = "$ " + " ".join(str(part) for part in command)
    print(line, flush=True)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        return subprocess.run(
            [str(part) for part in command], stdout=handle, stderr=subprocess.STDOUT
        ).returncode


def train(run_dir, options, log):
    """`python -m kvae.train` into run_dir, or --resume it when it exists.
    Returns "finished", "stopped: non-finite loss" or "failed (code)", also
    written to run_dir.status; a run that stopped on a non-finite loss is
    not retried (it would stop again the same way)."""
    run_dir = Path(run_dir)
    status_file = beside(run_dir, ".status")
    previous = status_file.read_text().strip() if status_file.is_file() else ""
    if previous.startswith("stopped"):
        return previous
    if (run_dir / "config.json").is_file():
        command = [sys.executable, "-m", "kvae.train", "--resume", "--out", run_dir]
    else:
        command = [sys.executable, "-m", "kvae.train", *options, "--out", run_dir]
    code = run(command, log)
    status = {0: "finished", 3: "stopped: non-finite loss"}.get(code, f"failed ({code})")
    status_file.write_text(status)
    return status


def evaluate(run_dir, options, log, out_name="eval"):
    """`python -m kvae.evaluate` of run_dir into run_dir/out_name unless its
    metrics.json exists; returns the metrics (None when there is no model)."""
    run_dir = Path(run_dir)
    metrics_file = run_dir / out_name / "metrics.json"
    if not metrics_file.is_file() and (run_dir / "stage1.keras").is_file():
        run(
            [sys.executable, "-m", "kvae.evaluate", run_dir, "--out", run_dir / out_name, *options],
            log,
        )
    return json.loads(metrics_file.read_text()) if metrics_file.is_file() else None


def metrics_rows(run_dir, stage="1"):
    """The metrics.csv rows of one stage."""
    with open(Path(run_dir) / "metrics.csv", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["stage"] == stage]


def mean_std(values):
    """'mean ± std' (sample std) of the finite values, with their count when
    some are missing."""
    values = np.asarray([v for v in values if v is not None], float)
    if len(values) == 0:
        return ""
    text = (
        f"{values.mean():.4g}"
        if len(values) == 1
        else f"{values.mean():.4g} ± {values.std(ddof=1):.2g}"
    )
    return text


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
