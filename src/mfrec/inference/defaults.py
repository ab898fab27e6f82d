"""The defaults of a recommendation request, defined once.

Inference.py's options (``--top``, ``--min-ratings``, ``--exclude``), its interactive loop and the
Python API (``exp.recommend``, ``exp.similar``, ``exp.explain``, ``run_request``) all read
``DEFAULTS``, so a notebook and the command line give the same list for the same request.
This module imports nothing heavy: the command line reads it while building ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestDefaults:
    """What a recommendation request uses when it does not say."""

    top: int = 10
    """How many movies a list holds."""
    min_ratings: int = 10
    """Only movies with at least this many training ratings are listed: a movie rated by a handful of
    people has noisy factors and tends to crowd the top of every list (0 keeps them all)."""
    exclude: str = "all"
    """An existing user's movies that are never listed: those rated in any split ("all") or in
    training only ("train")."""
    dislikes: str = "score"
    """How a made-up user's dislikes rank a list: "score" ranks by the model's score, where a film
    unlike a disliked one is lifted; "down-only" takes that lift off, so dislikes only pull films down
    (benchmarks/madeup_ranking.py measures both on the ranking protocol)."""


DEFAULTS = RequestDefaults()
