"""Errors that mean "the input is wrong": the CLI prints their one sentence and exits non-zero."""


class MfrecError(Exception):
    """Base class: the message is one clear sentence for the user, no traceback needed."""


class DataError(MfrecError):
    """A data file is missing, malformed, empty or out of range; the message names file and line."""


class DownloadError(MfrecError):
    """A dataset could not be downloaded or verified."""


class UnknownIdError(MfrecError, KeyError):
    """An id (user, movie, title) that the vocabulary does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(MfrecError):
    """Training produced an unusable model (NaN or exploding factors) or a model file is bad."""
