"""What kvae's commands share: one-line usage errors, the report of a
library error with its flag, and argument types."""

import argparse
import math
import sys

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2. Raised by
    the commands only; the library raises `kvae.errors` instead."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of exiting."""

    def error(self, message):
        raise UsageError(message)


def flag(argument):
    """The command-line form of an argument name: lr_epochs2 -> --lr-epochs2."""
    return "--" + argument.replace("_", "-")


def report(program, error, flags=()):
    """Print a usage or library error as one line for `program`, naming the
    flag of the argument at fault when the command has one (`flags`, the
    destinations of its options); return EXIT_BAD_INPUT."""
    message = " ".join(str(error).split())
    argument = getattr(error, "argument", None)
    if argument and argument in flags and flag(argument) not in message:
        message += f" ({flag(argument)})"
    print(f"{program}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def option_names(parser):
    """The destinations of a parser's --options (for `report`)."""
    return {action.dest for action in parser._actions if action.option_strings}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (got {text})")
    return value


def positive_int_or_auto(text):
    """An integer >= 1, or "auto" (the caller resolves it)."""
    return "auto" if text == "auto" else positive_int(text)


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 (got {text})")
    return value


def positive_float(text):
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (got {text})")
    return value


def non_negative_float(text):
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value
