"""The errors every layer raises; the scripts turn each into one line and an exit code."""


class DataError(Exception):
    """Bad or missing input data; the message is one line naming the file."""


class NumericalError(RuntimeError):
    """A loss, reward or gradient that is NaN or infinite: the update is not made."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) was honoured at a checkpoint: the run can go on with --resume."""
