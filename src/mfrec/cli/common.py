"""Helpers shared by the CLI commands: one-sentence errors, tables and the progress bar."""

from __future__ import annotations

import functools
import sys
from typing import Callable

import click


def friendly_errors(fn: Callable) -> Callable:
    """Turn mfrec's input errors into one sentence on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from mfrec.errors import MfrecError

        try:
            return fn(*args, **kwargs)
        except MfrecError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.secho("interrupted", fg="red", err=True)
            sys.exit(130)

    return wrapper


VERIFY_OPTION = click.option(
    "--verify", is_flag=True,
    help="Check every file of the prepared dataset against the SHA-256 in its manifest.json now "
         "(slower; file sizes are always checked, and Main.py hashes a dataset whose files changed "
         "since its last check anyway).",
)


def echo_table(rows: list[tuple[str, str]], title: str | None = None) -> None:
    """A two-column key/value table."""
    if title:
        click.secho(title, bold=True)
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")


class ProgressBar:
    """The command line's progress bar: a ``tqdm`` bar on stderr fed by ``mfrec.callbacks`` events.

    Pass it as the ``callback`` of a fit, a download or an evaluation: every ``Step`` advances the bar
    (a new label starts a new bar), every ``EpochReport`` shows its note beside it. Disabled, it
    ignores everything.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None
        self.label: str | None = None

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        from mfrec.callbacks import EpochReport, Step

        if isinstance(event, Step):
            if self.bar is None or event.label != self.label:
                self.close()
                from tqdm import tqdm

                tty = sys.stderr.isatty()
                # a terminal redraws the bar; a log file gets a line every 10 seconds at most
                self.bar = tqdm(total=event.total, desc=event.label, unit=event.unit.strip() or "it",
                                file=sys.stderr, mininterval=0.1 if tty else 10.0, dynamic_ncols=tty,
                                ncols=None if tty else 100, unit_scale=event.unit.strip() == "B")
                self.label = event.label
            self.bar.update(event.advance)
        elif isinstance(event, EpochReport) and self.bar is not None and event.note:
            self.bar.set_postfix_str(event.note, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
