"""Errors that mean "the input is wrong": the CLI prints their one sentence and exits non-zero.

Also ``renamed_keywords``: the old names of renamed keyword arguments, kept for one release.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable


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


def renamed_keywords(**old_to_new: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Keep the old names of renamed keyword arguments for one release.

    ``@renamed_keywords(root="data_root")`` turns a call ``f(root=x)`` into ``f(data_root=x)`` with a
    ``DeprecationWarning`` that names the new keyword; giving both is a TypeError, as for any
    argument given twice. The signature (``help()``, tab completion) shows only the new names.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{fn.__qualname__}() got both {old}= and {new}=, its new name")
                warnings.warn(f"{fn.__qualname__}(): {old}= is now {new}= (the old name goes in the next release)",
                              DeprecationWarning, stacklevel=2)
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
