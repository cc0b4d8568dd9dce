"""The README's commands run as written (issue 34): its set-up block, the
short commands (--help, --dry-run) in fresh processes with the environment
active as the README says, and the Python blocks it marks as runnable."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
RUNNABLE = "<!-- tests/test_readme.py runs this block as written -->"
BLOCK = re.compile(r"(<!--[^\n]*-->\n)?```(\w+)\n(.*?)```", re.S)
BLOCKS = [(marker or "", language, body) for marker, language, body in BLOCK.findall(README)]
BACKEND_CHATTER = ("I0000", "E0000", "W0000", "cuInit", "oneDNN", "cuda drivers", "absl::")


def active_environment(tmp_path):
    """A fresh environment as after `. .venv/bin/activate`: this Python's
    bin folder first on PATH, kvae's own variables cleared, TensorFlow's log
    level left at its default (so its lines would show)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KVAE_", "TF_CPP")) and key != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = env.get("HOME", str(tmp_path))
    return env


def run_active(command, cwd, tmp_path, timeout):
    """`command` in a fresh process of the `active_environment`, from `cwd`;
    the CompletedProcess with its text output."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=active_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def short_commands():
    """Every bash line of the README that asks for help or a dry run, without
    its trailing comment."""
    found = []
    for _, language, body in BLOCKS:
        if language != "bash":
            continue
        for line in body.splitlines():
            command = line.split("  #", 1)[0].strip()
            if re.search(r"(^|\s)(--help|--dry-run)(\s|$)", command):
                found.append(command)
    return found


def test_the_set_up_block_serves_and_tests_without_reinstalling():
    """The first block: two lines, the serving one says that it keeps
    running and binds no public address; each makes .venv only when it is
    missing; the test line runs the pytest command that .ci/run runs."""
    _, language, body = BLOCKS[0]
    lines = [line for line in body.splitlines() if line.strip()]
    assert language == "bash" and len(lines) == 2
    serve, test = lines
    assert "bentoml serve" in serve and "keeps running" in serve and "--host" not in serve
    assert "BENTOML_DO_NOT_TRACK=true" in serve
    assert serve.startswith("test -d .venv || ") and test.startswith("test -d .venv || ")
    assert test.endswith("python -m pytest -q")
    assert re.search(r"^python -m pytest -q$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_the_short_commands_run_quietly_as_written(tmp_path):
    commands = short_commands()
    assert {"python -m kvae.train --help", "python -m kvae.evaluate --help"} <= set(commands)
    for command in commands:
        done = run_active(["bash", "-c", command], ROOT, tmp_path, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        chatter = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if any(word in line for word in BACKEND_CHATTER)
        ]
        assert not chatter, f"{command} printed backend lines: {chatter}"


@pytest.mark.parametrize("module", ["kvae.train", "kvae.evaluate", "kvae.hub", "kvae.zoo"])
def test_help_and_argument_errors_do_not_import_tensorflow_or_jax(module, tmp_path):
    """--help and an unknown flag answer from plain Python: checked on
    sys.modules in a fresh process."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{module!r}, *sys.argv[1:]]\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "loaded = [m for m in ('tensorflow', 'jax', 'keras') if m in sys.modules]\n"
        "print('exit', code, 'loaded', loaded)\n"
    )
    for argv in (["--help"], ["--no-such-flag"]):
        done = run_active([sys.executable, "-c", probe, *argv], tmp_path, tmp_path, timeout=120)
        last = done.stdout.strip().splitlines()[-1]
        assert last == f"exit {0 if argv == ['--help'] else 2} loaded []", (argv, last, done.stderr)


def test_the_python_blocks_marked_runnable_run_as_written(tmp_path):
    """The marked Python blocks in one fresh process, each in a namespace of
    its own, from the repository root
    (where the README's paths point), writing into a scratch copy of the
    files it makes; every unmarked block names a placeholder (OWNER, a
    running server) that keeps it from running here."""
    runnable = [body for marker, language, body in BLOCKS if RUNNABLE in marker]
    assert len(runnable) >= 4
    for marker, language, body in BLOCKS:
        if language == "python" and RUNNABLE not in marker:
            assert "OWNER" in body or "127.0.0.1:3000" in body, body
    scratch = tmp_path / "work"
    scratch.mkdir()
    (scratch / "zoo").symlink_to(ROOT / "zoo")
    # One fresh process runs every block, each in a namespace of its own (one
    # TensorFlow start instead of one per block).
    runner = (
        "import sys\n"
        "for number, block in enumerate(sys.argv[1:]):\n"
        "    print('block', number, flush=True)\n"
        "    exec(compile(block, f'<README block {number}>', 'exec'), {'__name__': '__main__'})\n"
    )
    done = run_active([sys.executable, "-c", runner, *runnable], scratch, tmp_path, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-500:]}\n{done.stderr[-3000:]}"
    assert done.stdout.count("block ") == len(runnable)
    assert (scratch / "samples.png").is_file() and (scratch / "fmnist.keras").is_file()


def test_the_serve_sections_calls_run_against_a_real_server(server, tmp_path):
    """The README's curl lines and its BentoML client example, as written
    but for the server's address, against the default model's real server
    (tests/real_servers.py), from a folder that holds a shirt.png."""
    blocks = [(language, body) for _, language, body in BLOCKS if "127.0.0.1:3000" in body]
    assert sorted(language for language, _ in blocks) == ["bash", "python"]
    picture = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "shirt.png")
    printed = {}
    for language, body in blocks:
        body = body.replace("http://127.0.0.1:3000", server)
        command = ["bash", "-ec", body] if language == "bash" else [sys.executable, "-c", body]
        done = run_active(command, tmp_path, tmp_path, timeout=120)
        assert done.returncode == 0, f"{body}\n{done.stderr[-2000:]}"
        printed[language] = done.stdout
    for name in ("reconstruction.png", "means.png", "samples.png"):
        assert Image.open(tmp_path / name).size[0] >= 28, name
    answers = [json.loads(line) for line in printed["bash"].replace("}{", "}\n{").splitlines()]
    assert {"mu", "log_sigma"} <= set(answers[0]) and "z" in answers[1]
    assert any(answer.get("field") == "z" for answer in answers)  # the 400 the README promises
