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
