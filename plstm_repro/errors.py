"""Exceptions the CLI turns into one clear line (kept import-light for ``plstm --help``)."""


class IncompleteReproduction(RuntimeError):
    """Some artifacts of ``reproduce all`` could not run (the others did)."""
