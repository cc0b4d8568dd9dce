"""kvae's library errors (kvae/errors.py): the library raises ValueError
subclasses whose messages name the argument at fault, never a command-line
flag and never the commands' UsageError; each command prints them as one
line with the flag (kvae/cli.py)."""

import ast
import re
from pathlib import Path

import pytest

from kvae import cli
from kvae.errors import ConfigError, KvaeError, did_you_mean

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"kvae/train.py", "kvae/evaluate.py", "kvae/cli.py"}
"""Command-line modules: their whole body is the command."""
COMMAND_FUNCTIONS = {"main", "build_parser", "download_inception"}
"""Functions of library modules that are a command (`python -m kvae.zoo` ...)."""
FLAG = re.compile(r"(^|[\s(`'\"])--[a-z][a-z0-9-]*")


def library_code():
    """(path, node) of every function body and module-level statement of the
    library, outside the commands."""
    for path in sorted((ROOT / "kvae").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if name in COMMANDS:
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name in COMMAND_FUNCTIONS:
                    continue
            yield name, node


def texts_of(node):
    """The string constants inside `node` (the literal parts of f-strings too)."""
    return [
        child.value
        for child in ast.walk(node)
        if isinstance(child, ast.Constant) and isinstance(child.value, str)
    ]


def raised_texts(node):
    """The string constants of the messages that `node` raises."""
    for child in ast.walk(node):
        if isinstance(child, ast.Raise) and child.exc is not None:
            yield from texts_of(child.exc)


def test_library_code_raises_no_usage_error_and_names_no_flag():
    usage, flags = [], []
    for name, node in library_code():
        names = {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}
        attributes = {child.attr for child in ast.walk(node) if isinstance(child, ast.Attribute)}
        if "UsageError" in names | attributes:
            usage.append(f"{name}:{node.lineno}")
        flags += [
            f"{name}:{node.lineno}: {text!r}"
            for text in raised_texts(node)
            if FLAG.search(text) and "python -m" not in text  # a whole command to run is fine
        ]
    assert usage == [], usage
    assert flags == [], flags


def test_the_check_finds_a_flag_and_a_usage_error():
    """Negative control: the scan above catches both mistakes."""
    node = ast.parse('raise ConfigError(f"--lr2 {x} is too large")\nraise UsageError("x")\n')
    assert any(FLAG.search(text) for text in raised_texts(node))
    assert "UsageError" in {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def test_a_library_error_is_printed_as_one_line_with_its_flag(capsys):
    error = ConfigError("lr2 is too large\n for this run", argument="lr2")
    assert isinstance(error, ValueError) and isinstance(error, KvaeError)
    assert cli.report("kvae.train", error, {"lr2"}) == 2
    assert capsys.readouterr().err == "kvae.train: error: lr2 is too large for this run (--lr2)\n"
    cli.report("kvae.zoo", ConfigError("lr2 is too large", argument="lr2"))  # no such flag
    assert capsys.readouterr().err == "kvae.zoo: error: lr2 is too large\n"


@pytest.mark.parametrize(
    "name, choices, hint",
    [
        ("fashion-mnist", ["mnist", "fashion_mnist"], " Did you mean 'fashion_mnist'?"),
        ("celeb", ["celeba", "cifar10"], " Did you mean 'celeba'?"),
        ("zzz", ["celeba", "cifar10"], ""),
    ],
)
def test_did_you_mean(name, choices, hint):
    assert did_you_mean(name, choices) == hint
