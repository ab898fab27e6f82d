"""Forgiving movie-title matching: what a person types -> one movie index, or a clear error.

A query matches a title when both reduce to the same *key*: lower case, accents dropped,
punctuation dropped, a trailing article moved to the front ("Matrix, The" == "The Matrix") and
then dropped, the year in parentheses taken off. MovieLens keeps alternative titles in
parentheses ("Seven (Se7en) (1995)", "Nikita (La Femme Nikita) (1990)"); each of those is a key
too. The year is optional in the query; when given ("Alien (1979)" or "alien 1979") it must match.

Resolution, in order:

1. a query made only of digits is a ``movieId`` (the original id) when the dataset has it;
2. titles whose key equals the query's key (restricted to the year when one was given);
3. otherwise titles whose key starts with, or contains as whole words, the query's key.

One candidate is the answer. Several candidates that are the same film listed twice (identical
title and year, which happens in ml-100k) resolve to the one with the most training ratings.
Otherwise several candidates are ambiguous: ``AmbiguousTitleError`` lists them with their ids. No
candidate raises ``UnknownIdError`` naming the closest titles, best first (``rapidfuzz``, see
``TitleIndex._closest_keys``).

Every lookup reads indices built once per catalogue (key -> movies, word -> keys), so a query costs
at most one pass over the keys, which keeps ML-32M's ~87k titles interactive.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from mfrec.errors import MfrecError, UnknownIdError

# Articles MovieLens moves to the end of a title ("Postino, Il", "Boot, Das", "Promesse, La").
ARTICLES = (
    "the", "a", "an", "le", "la", "les", "l", "il", "lo", "gli", "i", "el", "los", "las", "der", "die",
    "das", "den", "det", "de", "het", "een", "ein", "eine", "o", "os", "as", "un", "une", "una", "uno",
)
_ARTICLE_SET = set(ARTICLES)
_TRAILING_ARTICLE = re.compile(r"^(.*),\s*(" + "|".join(ARTICLES) + r")'?$", re.IGNORECASE)
_YEAR_PAREN = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*(?:\([^)]*\))?\s*$")
_YEAR_BARE = re.compile(r"^(.*\D)\s+(\d{4})$")
_PARENS = re.compile(r"\(([^()]*)\)")
MAX_LISTED = 10
# rapidfuzz scores are 0..100: a key this close to the query is a suggestion (difflib's usual 0.6)
CLOSE_KEY_SCORE = 60
# a catalogue word this close to a query word counts as that word with a typo ("shawshnk")
CLOSE_WORD_SCORE = 80


class AmbiguousTitleError(MfrecError):
    """A title query that matches several different movies."""


@dataclass(frozen=True)
class Match:
    """A resolved query: the movie index and how it was found."""

    movie: int
    how: str  # "id", "exact", "partial" or "duplicate"


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    text = strip_accents(text).lower().replace("&", " and ")
    text = re.sub(r"['’`]", "", text)  # "Schindler's" -> "schindlers"
    return re.findall(r"[a-z0-9]+", text)


def key(text: str) -> str:
    """The comparison key of one title (no year): words only, leading articles dropped."""
    text = text.strip()
    m = _TRAILING_ARTICLE.match(text)
    if m:
        text = m.group(1)
    words = _words(text)
    while len(words) > 1 and words[0] in _ARTICLE_SET:
        words = words[1:]
    return " ".join(words)


def split_year(text: str, bare: bool = False) -> tuple[str, int | None]:
    """"Alien (1979)" -> ("Alien", 1979); with ``bare`` also "alien 1979"; no year -> (text, None)."""
    text = text.strip()
    m = _YEAR_PAREN.search(text)
    if m:
        return text[: m.start()].strip(), int(m.group(1))
    m = _YEAR_BARE.match(text) if bare else None
    if m and 1880 <= int(m.group(2)) <= 2100:
        return m.group(1).strip(), int(m.group(2))
    return text, None


def title_keys(title: str) -> list[str]:
    """All keys of a catalogue title: the main title and each alternative title in parentheses."""
    body, _ = split_year(title)
    keys = []
    main = _PARENS.sub(" ", body)
    for part in [main, *_PARENS.findall(body)]:
        k = key(part)
        if k and k not in keys:
            keys.append(k)
    return keys


class TitleIndex:
    """Resolves typed titles or ids to movie indices for one catalogue.

    ``movie_ids`` are the original ids (``movieId``), ``titles`` and ``years`` the catalogue's
    columns in index order; ``popularity`` (training ratings per movie) breaks ties between
    duplicate entries of the same film.
    """

    def __init__(self, movie_ids, titles, years=None, popularity=None):
        self.movie_ids = np.asarray(movie_ids, dtype=np.int64)
        self.titles = [str(t) if t is not None else "" for t in titles]
        n = len(self.titles)
        self.years = [None if y is None or (isinstance(y, float) and np.isnan(y)) else int(y)
                      for y in (years if years is not None else [None] * n)]
        self.popularity = np.zeros(n) if popularity is None else np.asarray(popularity, dtype=np.float64)
        self._id_pos = {int(m): i for i, m in enumerate(self.movie_ids)}
        self._by_key: dict[str, list[int]] = {}
        self._keys: list[list[str]] = []
        for i, t in enumerate(self.titles):
            ks = title_keys(t)
            if self.years[i] is None:
                self.years[i] = split_year(t)[1]
            self._keys.append(ks)
            for k in ks:
                self._by_key.setdefault(k, []).append(i)
        self._all_keys = sorted(self._by_key)
        # word -> positions in _all_keys of the keys containing it (partial matches, typo fallback)
        self._word_keys: dict[str, set[int]] = {}
        for j, k in enumerate(self._all_keys):
            for w in k.split():
                self._word_keys.setdefault(w, set()).add(j)
        self._words = sorted(self._word_keys)

    @classmethod
    def from_movies(cls, movies, popularity=None) -> "TitleIndex":
        """From a dataset's polars ``movies`` table (rows in index order)."""
        movies = movies.sort("movie")
        years = movies["year"].to_list() if "year" in movies.columns else None
        return cls(movies["movieId"].to_numpy(), movies["title"].to_list(), years, popularity)

    # -- queries ---------------------------------------------------------------------------------
    def describe(self, i: int) -> str:
        return f"{self.titles[i]} [id {self.movie_ids[i]}]"

    def resolve(self, query: str | int) -> int:
        """The movie index a query names; raises AmbiguousTitleError or UnknownIdError."""
        return self.match(query).movie

    def match(self, query: str | int) -> Match:
        text = str(query).strip()
        if not text:
            raise UnknownIdError("an empty movie title was given")
        if text.isdigit() and int(text) in self._id_pos:
            return Match(self._id_pos[int(text)], "id")
        # "Blade Runner 2049" is a title; "alien 1979" is a title and a year: try both readings
        readings = [split_year(text)]
        if readings[0][1] is None and split_year(text, bare=True)[1] is not None:
            readings.append(split_year(text, bare=True))
        readings = [(key(body), year) for body, year in readings if key(body)]
        if not readings:
            raise UnknownIdError(f"{text!r} does not look like a movie title or id")
        for how in ("exact", "partial"):
            for qkey, year in readings:
                cands = self._by_key.get(qkey, []) if how == "exact" else self._partial(qkey)
                found = self._pick(cands, year, text, how)
                if found is not None:
                    return found
        if text.isdigit():
            raise UnknownIdError(f"no movie has id {text} and no title matches {text!r}")
        raise UnknownIdError(self._unknown_message(text, *readings[-1]))

    def close_candidates(self, query: str | int, chosen: int, limit: int = 3) -> list[int]:
        """Other movies a query could have meant (closest titles first, duplicates of ``chosen`` left out):
        what to mention when a title was matched partially, so "monty python" says which Monty Python
        film it took and which others there are."""
        body, year = split_year(str(query).strip(), bare=True)
        qkey = key(body) or key(str(query))
        if not qkey:
            return []
        same = (self.titles[chosen].strip(), self.years[chosen])
        found = list(dict.fromkeys(self._partial(qkey) + [i for k in self._closest_keys(qkey, 2 * limit + 2)
                                                          for i in self._by_key[k]]))
        words = qkey.split()

        def shares_a_word(i: int) -> bool:  # "pythons" shares "python"; "Money Train" shares nothing with it
            return any(w.startswith(q) or q.startswith(w) for k in self._keys[i] for w in k.split() for q in words
                       if min(len(w), len(q)) >= 3)

        others = [i for i in found if i != chosen and (self.titles[i].strip(), self.years[i]) != same
                  and (year is None or self.years[i] == year) and shares_a_word(i)]
        return others[:limit]

    def match_note(self, query: str | int, match: Match) -> str:
        """One line saying what a query matched: the resolved title, and when the match was not exact
        (a partial title, a duplicate entry), the other close candidates."""
        text = str(query).strip()
        said = f"{text!r} -> {self.describe(match.movie)}"
        if match.how in ("id", "exact"):
            return said
        if match.how == "duplicate":
            return said + " (listed twice in the catalogue; took the entry with more ratings)"
        others = self.close_candidates(text, match.movie)
        if not others:
            return said + " (partial title; no other title is close)"
        return said + " (partial title; also close: " + "; ".join(self.describe(i) for i in others) + ")"

    def search(self, query: str, limit: int = 10) -> list[int]:
        """Movies whose title contains the query's words (best first), for an interactive search."""
        body, year = split_year(str(query))
        qkey = key(body)
        if not qkey:
            return []
        hits = list(dict.fromkeys(self._by_key.get(qkey, []) + self._partial(qkey)))
        if year is not None:
            hits = [i for i in hits if self.years[i] == year]
        if hits:  # the title's words are there: the most rated first
            return sorted(hits, key=lambda i: -self.popularity[i])[:limit]
        # a typo: the closest titles first
        return list(dict.fromkeys(i for k in self._closest_keys(qkey, limit) for i in self._by_key[k]))[:limit]

    # -- helpers ---------------------------------------------------------------------------------
    def _closest_keys(self, qkey: str, limit: int) -> list[str]:
        """Up to ``limit`` catalogue keys close to a query key, the closest first.

        Closeness is rapidfuzz's ``fuzz.ratio`` (normalised Indel similarity, 0..100) of the whole
        keys; keys scoring at least CLOSE_KEY_SCORE are the answer. Failing those (a partial title
        with a typo, "shawshnk"), the keys sharing a word with the query, or a word within
        CLOSE_WORD_SCORE of one of its words, ranked by the same score.
        """
        found = process.extract(qkey, self._all_keys, scorer=fuzz.ratio, processor=None, limit=limit,
                                score_cutoff=CLOSE_KEY_SCORE)
        if not found:
            near: set[int] = set()
            for w in set(qkey.split()):
                for word, _, _ in process.extract(w, self._words, scorer=fuzz.ratio, processor=None, limit=3,
                                                  score_cutoff=CLOSE_WORD_SCORE):
                    near |= self._word_keys[word]
            pool = [self._all_keys[j] for j in sorted(near)]
            found = process.extract(qkey, pool, scorer=fuzz.ratio, processor=None, limit=limit)
        return [k for k, _, _ in found]

    def _partial(self, qkey: str) -> list[int]:
        """Movies with a key that contains the query key's words, whole and in a row, in key order."""
        postings = [self._word_keys.get(w) for w in set(qkey.split())]
        if not postings or not all(postings):
            return []
        postings.sort(key=len)
        padded = f" {qkey} "
        found = sorted(j for j in postings[0].intersection(*postings[1:]) if padded in f" {self._all_keys[j]} ")
        return list(dict.fromkeys(i for j in found for i in self._by_key[self._all_keys[j]]))

    def _pick(self, candidates: list[int], year: int | None, text: str, how: str) -> Match | None:
        if year is not None:
            candidates = [i for i in candidates if self.years[i] == year]
        candidates = list(dict.fromkeys(candidates))
        if not candidates:
            return None
        if len(candidates) == 1:
            return Match(candidates[0], how)
        # the same film listed twice (same title and year): take the one with the most ratings
        if len({(self.titles[i].strip(), self.years[i]) for i in candidates}) == 1:
            best = max(candidates, key=lambda i: (self.popularity[i], -i))
            return Match(best, "duplicate")
        listed = sorted(candidates, key=lambda i: (-self.popularity[i], i))
        shown = "; ".join(self.describe(i) for i in listed[:MAX_LISTED])
        more = f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
        raise AmbiguousTitleError(
            f"{text!r} matches {len(listed)} movies: {shown}{more}; add the year or use the id"
        )

    def _unknown_message(self, text: str, qkey: str, year: int | None) -> str:
        if year is not None and qkey in self._by_key:
            others = "; ".join(self.describe(i) for i in self._by_key[qkey][:MAX_LISTED])
            return f"no movie {text!r} from {year}; with that title there is: {others}"
        close = self._closest_keys(qkey, 5)
        if close:
            names = "; ".join(dict.fromkeys(self.describe(self._by_key[k][0]) for k in close))
            return f"no movie matches {text!r}; closest titles: {names}"
        return f"no movie matches {text!r} and no title is close to it; try `search` or a movie id"
