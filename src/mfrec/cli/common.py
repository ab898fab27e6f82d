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


def respell(args: list[str], renamed: dict[str, str], note: Callable[[str], None] | None = None) -> list[str]:
    """``args`` with the old spellings of renamed options replaced by the new ones (``--root X``,
    ``--root=X``, and for a short old name also ``-k5``); ``note`` hears one line per old spelling used.
    Everything after ``--`` is left alone."""
    out: list[str] = []
    used: list[str] = []
    for i, token in enumerate(args):
        if token == "--":
            out += args[i:]
            break
        for old, new in renamed.items():
            if token == old:
                out.append(new)
            elif old.startswith("--") and token.startswith(old + "="):
                out.append(new + token[len(old):])
            elif not old.startswith("--") and token.startswith(old) and not token.startswith("--"):
                out += [new, token[len(old):]]
            else:
                continue
            used.append(old)
            break
        else:
            out.append(token)
    if note is not None:
        for old in dict.fromkeys(used):
            note(f"{old} is now {renamed[old]}; the old spelling goes in the next release")
    return out


class _OldSpellings:
    """A click command that still takes the old spellings of its renamed options for one release.

    ``renamed={"--root": "--runs-root"}``: the old spelling is rewritten before parsing, so it works
    wherever the new one does, never shows in ``--help``, and warns once on stderr.
    """

    def __init__(self, *args, renamed: dict[str, str] | None = None, **kwargs):
        self.renamed = dict(renamed or {})
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        def note(line: str) -> None:
            # a FutureWarning (the category meant for end users) prints one line on stderr, e.g.
            # "Main.py:0: FutureWarning: --root is now --runs-root; ...", and the usual filters silence it
            import warnings

            warnings.warn_explicit(line, FutureWarning, ctx.command_path or "mfrec", 0)

        return super().parse_args(ctx, respell(list(args), self.renamed, None if ctx.resilient_parsing else note))


class Command(_OldSpellings, click.Command):
    """``click.Command`` with ``renamed=`` (old option spellings kept for one release)."""


class Group(_OldSpellings, click.Group):
    """``click.Group`` with ``renamed=`` (old option spellings kept for one release)."""


# One name per concept in every command: --data-root is Training_data/, --runs-root is Experiments_/
# (old spellings: --root, --runs-dir), --top is a list's length (old: evaluate's -k).
DATA_ROOT = "Training_data"
RUNS_ROOT = "Experiments_"
DATA_ROOT_OPTION = click.option(
    "--data-root", type=click.Path(file_okay=False), default=DATA_ROOT, show_default=True,
    help="Where prepared datasets are (Data_processing.py writes them there).",
)
RUNS_ROOT_OPTION = click.option(
    "--runs-root", type=click.Path(file_okay=False), default=RUNS_ROOT, show_default=True,
    help="Where training runs are (Main.py writes them there).",
)


def top_option(default: int, help: str, most: int | None = None):
    """``--top``/``-n``: how many movies a list holds."""
    return click.option("--top", "-n", default=default, show_default=True, type=click.IntRange(1, most), help=help)


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
