"""Helpers shared by the CLI commands: one-sentence errors and a progress bar."""

from __future__ import annotations

import functools
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

import click

T = TypeVar("T")


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
    help="Check every file of the prepared dataset against the SHA-256 in its manifest.json "
         "(slower; file sizes are always checked).",
)


def echo_table(rows: list[tuple[str, str]], title: str | None = None) -> None:
    """A two-column key/value table."""
    if title:
        click.secho(title, bold=True)
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")


class Progress:
    """A one-line progress bar on stderr that degrades to plain lines when stderr is not a terminal."""

    def __init__(self, total: int | None, label: str, unit: str = "", enabled: bool = True):
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self._last = 0.0
        self.postfix = ""

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        now = time.perf_counter()
        if not self.enabled:
            return
        if self.tty:
            if now - self._last > 0.1 or (self.total and self.done >= self.total):
                self._last = now
                sys.stderr.write("\r" + self._line(now) + "\033[K")
                sys.stderr.flush()
        else:
            sys.stderr.write(self._line(now) + "\n")

    def _line(self, now: float) -> str:
        elapsed = now - self.t0
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 24) + "-" * (24 - int(frac * 24))
            head = f"{self.label} [{bar}] {self.done}/{self.total}{self.unit}"
        else:
            head = f"{self.label} {self.done}{self.unit}"
        return f"{head} {elapsed:6.1f}s {self.postfix}".rstrip()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], total: int | None, label: str) -> Iterator[T]:
    with Progress(total, label) as bar:
        for item in items:
            yield item
            bar.update()
