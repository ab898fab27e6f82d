"""Helpers shared by the CLI commands: one-sentence errors, tables and the progress bar."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import click

# signals whose default action ends the process without any cleanup: while a command runs they raise
# ``Terminated`` instead (SIGTERM is what ``timeout``, ``kill`` and job schedulers send)
CAUGHT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A termination signal as an exception.

    A ``KeyboardInterrupt`` so that every guard written for Ctrl-C sees it the same way: a training
    run is marked failed ("interrupted by SIGTERM"), temporary files are removed, nothing is
    half-written. ``exit_code`` is the shell's convention, 128 + the signal number (143 for SIGTERM).
    """

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


def _raise_terminated(signum: int, frame) -> None:
    # a second signal while the first is being cleaned up ends the process at once, as it would by default
    signal.signal(signum, signal.SIG_DFL)
    raise Terminated(signum)


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While the block runs, ``CAUGHT_SIGNALS`` raise ``Terminated`` in the main thread.

    Only signals left at their default action are taken over (one ignored on purpose, SIGHUP under
    ``nohup`` say, stays ignored), and the previous handlers come back afterwards, so a notebook or a
    test that calls a command keeps its own. Elsewhere than the main thread nothing changes.
    """
    taken: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in CAUGHT_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:
                taken[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, previous in taken.items():
            signal.signal(sig, previous)


def friendly_errors(fn: Callable) -> Callable:
    """Turn mfrec's input errors into one sentence on stderr and exit code 2, never a traceback;
    Ctrl-C and SIGTERM into one line and the shell's exit code (130, 143)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from mfrec.errors import MfrecError

        with signals_as_interrupts():
            try:
                return fn(*args, **kwargs)
            except MfrecError as e:
                click.secho(f"error: {e}", fg="red", err=True)
                sys.exit(2)
            except KeyboardInterrupt as e:
                click.secho(f"interrupted by {e}" if isinstance(e, Terminated) else "interrupted", fg="red", err=True)
                sys.exit(getattr(e, "exit_code", 130))

    return wrapper


VERIFY_OPTION = click.option(
    "--verify", is_flag=True,
    help="Check every file of the prepared dataset against the SHA-256 in its manifest.json now "
         "(slower; file sizes are always checked, and Main.py and mfrec evaluate hash a dataset whose "
         "files changed since its last check anyway).",
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
