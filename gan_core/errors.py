"""Errors a user can act on.

Every command catches `UserError`, prints its message on one line and exits
with status 2, so bad input never ends in a traceback.
"""


class UserError(Exception):
    """Bad flags, data, output directory or checkpoint: the message says what to do."""


class DataError(UserError):
    """A dataset file is missing, corrupt or truncated, or cannot be downloaded."""


class DownloadError(DataError):
    """Every mirror failed; nothing partial was left in place."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable or does not match the model."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none.

    Library errors (Orbax, torch.load, XLA) can span pages; a one-line
    `UserError` quotes only their first line.
    """
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__
