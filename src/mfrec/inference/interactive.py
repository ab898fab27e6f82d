"""The interactive loop of ``Inference.py interactive``: build a profile, get recommendations.

Commands (one per line; ``help`` lists them): ``search <query>``, ``add <id|title> [rating]``,
``remove <id|index>``, ``clear``, ``show``, ``recommend [N]``, ``similar <title>``, ``popular``,
``genre [G, ...]``, ``years [1990-1999]``, ``save [label]``, ``help``, ``exit``. ``genre`` and ``years``
are the filters of Inference.py's --genre and --years, for every list that follows; ``save`` writes the
last list shown to ``Predictions/<run>/<label>.csv`` and ``.parquet`` as Inference.py does. A bad
command prints a one-line hint; no input ends the loop with a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Callable, TextIO

from mfrec.errors import MfrecError
from mfrec.inference.defaults import DEFAULTS
from mfrec.inference.output import DEFAULT_ROOT, format_table, write_predictions
from mfrec.inference.recommend import Filters, Recommender

HELP = """commands:
  search <query>            find movies by title words (shows their ids)
  add <id|title> [rating]   rate a movie (no rating = a like, the top of the scale)
  remove <id|index>         drop a rating: a movieId in your list, else its position in `show`
  clear                     drop all ratings
  show                      your ratings
  recommend [N]             top N (default 10) for your ratings, with why
  similar <title>           movies nearest to a title
  popular                   the most-rated movies (to find some to rate)
  genre [G, G ...]          list only movies of any of these genres (no genre: any genre again)
  years [1990-1999]         list only movies from these years: 1995, 1990-1999, 1990-, -1980 (none: any year)
  save [label]              write the last list shown to Predictions/<run>/<label>.csv and .parquet
  help                      this list
  exit                      leave (also quit, or end of input)"""

COMMANDS = ("search", "add", "remove", "clear", "show", "recommend", "similar", "popular", "genre", "years", "save",
            "help", "exit", "quit")


class Session:
    """A made-up user's ratings and the commands that act on them; ``handle`` returns text."""

    def __init__(self, rec: Recommender, top: int = DEFAULTS.top, min_ratings: int = DEFAULTS.min_ratings,
                 out_dir: str | os.PathLike = DEFAULT_ROOT):
        self.rec = rec
        self.top = top
        self.filters = Filters(min_ratings=int(min_ratings))
        self.out_dir = Path(out_dir)
        self.ratings: dict[int, float] = {}  # movie index -> rating, in the order added
        self.last = None  # the last list shown (a Result), for `save`

    def handle(self, line: str) -> str | None:
        """Run one command line; the text to print, or None to end the loop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return ""
        cmd, _, arg = line.partition(" ")
        cmd, arg = cmd.lower(), arg.strip()
        if cmd in ("exit", "quit"):
            return None
        handler: Callable[[str], str] | None = getattr(self, f"cmd_{cmd}", None)
        if cmd not in COMMANDS or handler is None:
            import difflib

            close = difflib.get_close_matches(cmd, COMMANDS, n=1)
            hint = f" — did you mean `{close[0]}`?" if close else ""
            return f"unknown command {cmd!r}{hint} (type `help` for the list)"
        try:
            return handler(arg)
        except MfrecError as e:
            return f"error: {e}"
        except Exception as e:  # never a traceback in the loop
            return f"error: {type(e).__name__}: {e} (type `help` for the commands)"

    # -- commands --------------------------------------------------------------------------------
    def cmd_help(self, arg: str) -> str:
        return HELP

    def cmd_search(self, arg: str) -> str:
        if not arg:
            return "usage: search <query>, e.g. search star wars"
        hits = self.rec.titles.search(arg, limit=15)
        if not hits:
            return f"no title matches {arg!r}"
        return "\n".join(
            f"  id {int(self.rec.movie_id_array[m]):>7}  {self.rec.title(m)}  ({int(self.rec.popularity[m])} ratings)" for m in hits
        )

    def cmd_add(self, arg: str) -> str:
        if not arg:
            return "usage: add <id|title> [rating], e.g. add Star Wars 4.5"
        name, rating = arg, self.rec.scale[1]
        try:  # the whole text is exactly a title ("Blade Runner 2049"): a like
            whole = self.rec.titles.match(_unquote(arg))
        except MfrecError:
            whole = None
        if whole is not None and whole.how in ("exact", "duplicate", "id") and " " in arg.strip():
            self.ratings[whole.movie] = rating
            return f"added {self.rec.title(whole.movie)} = {rating:g}  ({len(self.ratings)} rated)"
        m = re.fullmatch(r"(.+?)\s+(\d+(?:\.\d+)?)", arg)
        if m:  # "Title 4.5": a trailing number is a rating when the rest is a known movie
            try:
                found = self.rec.titles.match(_unquote(m.group(1)))
                movie = found.movie
            except MfrecError:
                movie = None
            if movie is not None:
                value = float(m.group(2))
                lo, hi = self.rec.scale
                if not lo <= value <= hi:  # "Blade Runner 2049": maybe the number belongs to the title
                    try:
                        whole = self.rec.movie(_unquote(arg))
                    except MfrecError:
                        whole = None
                    if whole is not None:
                        self.ratings[whole] = rating
                        return f"added {self.rec.title(whole)} = {rating:g}  ({len(self.ratings)} rated)"
                self.ratings[movie] = self.rec.check_rating(value, self.rec.title(movie))
                said = f"added {self.rec.title(movie)} = {value:g}  ({len(self.ratings)} rated)"
                if found.how in ("id", "exact"):
                    return said
                return said + "\n  " + self.rec.titles.match_note(_unquote(m.group(1)), found)
        found = self.rec.titles.match(_unquote(name))
        self.ratings[found.movie] = rating
        said = f"added {self.rec.title(found.movie)} = {rating:g}  ({len(self.ratings)} rated)"
        if found.how in ("id", "exact"):
            return said
        return said + "\n  " + self.rec.titles.match_note(_unquote(name), found)

    def cmd_remove(self, arg: str) -> str:
        if not arg:
            return "usage: remove <id|index> (see `show`)"
        order = list(self.ratings)
        target = None
        if arg.isdigit():
            n = int(arg)
            by_id = [m for m in order if int(self.rec.movie_id_array[m]) == n]
            if by_id:
                target = by_id[0]
            elif 1 <= n <= len(order):
                target = order[n - 1]
        if target is None:
            movie = self.rec.movie(_unquote(arg))
            if movie not in self.ratings:
                return f"{self.rec.title(movie)} is not in your ratings (see `show`)"
            target = movie
        del self.ratings[target]
        return f"removed {self.rec.title(target)}  ({len(self.ratings)} rated)"

    def cmd_clear(self, arg: str) -> str:
        n = len(self.ratings)
        self.ratings.clear()
        return f"cleared {n} rating{'s' if n != 1 else ''}"

    def cmd_show(self, arg: str) -> str:
        if not self.ratings:
            return "no ratings yet: `search` for a title, then `add` it"
        return "\n".join([
            *(f"  {i:>2}. {self.rec.title(m)} [id {int(self.rec.movie_id_array[m])}]  {r:g}"
              for i, (m, r) in enumerate(self.ratings.items(), 1)),
            self._filter_text(),
        ])

    def cmd_recommend(self, arg: str) -> str:
        n = self.top
        if arg:
            if not arg.isdigit() or int(arg) < 1:
                return "usage: recommend [N] with N a positive whole number"
            n = int(arg)
        if not self.ratings:
            return "no ratings yet: `add` a few movies you like first (or try `popular`)"
        return self._shown(self.rec.recommend(list(self.ratings.items()), n=n, filters=self.filters))

    def cmd_similar(self, arg: str) -> str:
        if not arg:
            return "usage: similar <title>"
        from mfrec.inference.api import match_notes

        result = self.rec.similar(_unquote(arg), n=self.top, filters=self.filters)
        result.notes[:0] = match_notes(self.rec, [_unquote(arg)])
        return self._shown(result)

    def cmd_popular(self, arg: str) -> str:
        # the most-rated movies pass any --min-ratings anyway: only the genre and years filters apply
        filters = Filters(self.filters.genres, self.filters.years)
        result = self.rec.popular(n=self.top, filters=filters, exclude=list(self.ratings))
        if filters.describe():
            result.notes.append(f"filter: {filters.describe()}")
        return self._shown(result)

    def _shown(self, result) -> str:
        self.last = result
        return format_table(result)

    def cmd_genre(self, arg: str) -> str:
        known = {g.lower(): g for g in self.rec.dataset.genres}
        if "," in arg:
            wanted = [g.strip() for g in arg.split(",") if g.strip()]
        else:  # one genre, spaces and all ("(no genres listed)"), else several separated by spaces
            wanted = [_unquote(arg)] if _unquote(arg).lower() in known or " " not in arg else _unquote(arg).split()
        wanted = [w for w in wanted if w]
        filters = Filters(tuple(known.get(g.lower(), g) for g in wanted), self.filters.years, self.filters.min_ratings)
        self.rec.filter_mask(filters)  # an unknown genre is one sentence naming the known ones
        self.filters = filters
        return self._filter_text()

    def cmd_years(self, arg: str) -> str:
        years = Filters.parse_years(arg or None)
        self.filters = Filters(self.filters.genres, years, self.filters.min_ratings)
        return self._filter_text()

    def _filter_text(self) -> str:
        return f"filter: {self.filters.describe()}" if self.filters.describe() else "filter: none (every movie)"

    def cmd_save(self, arg: str) -> str:
        if self.last is None:
            return "nothing to save yet: `recommend`, `similar` or `popular` first, then `save [label]`"
        label = _unquote(arg) if arg else None
        # without a label the list's own name is numbered when taken; a label given replaces its file
        replaced = label is not None and (self.out_dir / self.rec.run_name / f"{label}.csv").exists()
        csv, parquet = write_predictions(self.last, self.rec.run_name, label, self.out_dir)
        return f"wrote {csv} and {parquet.name}" + (f" (replacing the earlier {csv.name})" if replaced else "")


def _unquote(text: str) -> str:
    try:
        parts = shlex.split(text)
    except ValueError:
        return text
    return " ".join(parts) if parts else text


def run_loop(rec: Recommender, stdin: TextIO, echo: Callable[..., None], top: int = DEFAULTS.top,
             prompt: str = "mfrec> ", min_ratings: int = DEFAULTS.min_ratings,
             out_dir: str | os.PathLike = DEFAULT_ROOT) -> int:
    """Read commands until ``exit`` or end of input; returns the number of commands run.

    ``echo(text, nl=True)`` prints (``click.echo``); ``save`` writes under ``out_dir`` (Predictions/).
    """
    session = Session(rec, top, min_ratings, out_dir)
    echo(f"{len(rec.titles_list)} movies; type `help` for the commands, `exit` to leave")
    count = 0
    while True:
        echo(prompt, nl=False)
        line = stdin.readline()
        if not line:
            echo("")
            break
        count += 1
        out = session.handle(line)
        if out is None:
            break
        if out:
            echo(out)
    return count

