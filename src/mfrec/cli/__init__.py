"""The ``mfrec`` command line.

Every command lives in its own module and is imported only when it runs, so ``mfrec --help`` stays
fast: numba, polars, matplotlib and torch load inside the command bodies.

The top-level scripts are the same commands: ``Data_processing.py`` is ``mfrec prepare``,
``Main.py`` is ``mfrec train`` and ``Inference.py`` is ``mfrec recommend``.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

# command name -> (module, attribute, one-line help shown by `mfrec --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "prepare": ("mfrec.cli.prepare", "prepare", "Prepare a MovieLens or synthetic dataset into Training_data/ (Data_processing.py)."),
    "train": ("mfrec.cli.train", "train", "Train a model and write an experiment folder (Main.py)."),
    "recommend": ("mfrec.cli.recommend", "recommend", "Recommend movies for a made-up user, users or pairs (Inference.py)."),
    "analyze": ("mfrec.cli.analyze", "analyze", "Statistics and figures for a prepared dataset."),
    "plot": ("mfrec.cli.plot", "plot", "Figures for a training run."),
    "compare": ("mfrec.cli.compare", "compare", "Compare training runs in one table and one figure."),
    "evaluate": ("mfrec.cli.evaluate", "evaluate", "Evaluate a run under the rating or ranking protocol."),
    "tune": ("mfrec.cli.tune", "tune", "Search a model's hyperparameters on the validation split."),
    "serve": ("mfrec.cli.serve", "serve", "Serve a trained run: a web page and a JSON API (the serve extra)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table above so that --help imports nothing heavy.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mfrec")
def main() -> None:
    """mfrec: fast matrix-factorization recommenders for MovieLens-style ratings."""


def run_script(command_name: str) -> None:
    """Entry point for the top-level scripts: run one command as if it were the whole program."""
    module, attr, _ = COMMANDS[command_name]
    command = getattr(importlib.import_module(module), attr)
    import os
    import sys

    command(prog_name=os.path.basename(sys.argv[0]) or command_name)
