"""Exceptions the CLI turns into one clear line (kept import-light for ``plstm --help``).

``UserError`` and its subclasses carry a message meant for the user and the exit code the CLI
returns; anything else that escapes a command is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or a state the user can fix: one line, exit code ``exit_code``."""

    exit_code = 2


class UsageError(UserError, ValueError):
    """A command-line option or argument the command cannot use."""


class ConfigError(UserError, ValueError):
    """A config key or value out of its range: one line naming the key, the value and what is
    allowed, raised when the config is built (before any run exists)."""


class IncompleteGrid(UserError, ValueError):
    """An artifact's figure or table needs grid points that have no finished run yet."""


class IncompleteReproduction(UserError, RuntimeError):
    """Some artifacts or grid points of ``reproduce`` could not run (the others did)."""

    exit_code = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint file cannot be used: unreadable, not ours, or holding more than data."""


class NonFiniteLoss(UserError, RuntimeError):
    """Training produced a NaN or infinite loss; the run ends FAILED, its last good checkpoint
    stays."""

    exit_code = 1


class EnvironmentProblem(UserError, RuntimeError):
    """Something outside the input is missing: a server, a port, the network."""

    exit_code = 1


class DataError(UserError, ValueError):
    """A dataset's files or settings cannot be used (for the data layer to raise)."""


class Stopped(KeyboardInterrupt):
    """Stopped on a signal (SIGINT, SIGTERM) after checkpointing; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum
