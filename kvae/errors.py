"""kvae's library errors: ValueError subclasses whose messages name the
argument at fault (`argument`), never a command-line flag. The commands
(`python -m kvae.train`, `.evaluate`, `.zoo`, `.hub`) print each as one
line, add the flag that sets the argument, and exit with code 2
(`kvae.cli.report`)."""

import difflib


def did_you_mean(name, choices):
    """ " Did you mean 'x'?" for the nearest of `choices` to `name`, or ""."""
    near = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {near[0]!r}?" if near else ""


class KvaeError(ValueError):
    """An error of kvae's library: `argument` names the argument at fault,
    or is None."""

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument


class ConfigError(KvaeError):
    """A run configuration that cannot be: an unknown key, an option that
    does not apply (to the network, the observation model), or a continued
    run that changes what it may not."""


class RunError(KvaeError):
    """A run folder that cannot be created, read or continued as asked."""


class EvaluationError(KvaeError):
    """An evaluation that cannot run as asked (a model and data that do not
    fit, an option the model does not have, the FID network missing with
    fid="on")."""


class NonFiniteLoss(RuntimeError):
    """The loss turned NaN or infinite: the run stops and keeps the last good
    checkpoint (exit code 3 in the command). `argument` names the learning
    rate of the stage (lr or lr2), the usual remedy."""

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument
