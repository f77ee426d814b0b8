"""Which exceptions a grid point or a plan takes as the user's to fix (the point is skipped, in
one line) and which are bugs (shown whole, the point reported as crashed)."""

from __future__ import annotations

from ..errors import UserError


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the user can fix this" when a grid point or a plan meets them:
    ours, a missing file (how the data layer says a dataset is not there yet) and the data
    layer's declared corrupt-input errors. Anything else is a bug and keeps its traceback."""
    from ..data.archives import ArchiveError
    from ..data.nmnist import CorruptRecording
    from ..data.store import StoreError

    return (UserError, FileNotFoundError, ArchiveError, CorruptRecording, StoreError)
