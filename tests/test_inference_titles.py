"""Forgiving title matching on a hand-made catalogue with MovieLens's quirks."""

from __future__ import annotations

import pytest

from mfrec.errors import UnknownIdError
from mfrec.inference.titles import AmbiguousTitleError, TitleIndex, key, split_year

CATALOGUE = [
    (1, "Matrix, The (1999)"),
    (2, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"),
    (3, "Hamlet (1948)"),
    (4, "Hamlet (1996)"),
    (5, "Star Wars (1977)"),
    (6, "Star Wars: Episode I - The Phantom Menace (1999)"),
    (7, "Chasing Amy (1997)"),
    (8, "Chasing Amy (1997)"),  # the same film listed twice, as in ml-100k
    (9, "Blade Runner 2049 (2017)"),
    (10, "Postino, Il (1994)"),
    (11, "Seven (a.k.a. Se7en) (1995)"),
    (12, "Schindler's List (1993)"),
    (1941, "Citizen Kane (1941)"),
    (13, "Godfather: Part II, The (1974)"),
]


@pytest.fixture(scope="module")
def index():
    ids = [m for m, _ in CATALOGUE]
    titles = [t for _, t in CATALOGUE]
    popularity = [10, 5, 3, 8, 50, 20, 1, 9, 4, 2, 6, 7, 11, 12]
    return TitleIndex(ids, titles, None, popularity)


def _id(index, query):
    return int(index.movie_ids[index.resolve(query)])


@pytest.mark.parametrize(
    "query,movie_id",
    [
        ("the matrix", 1), ("Matrix, The", 1), ("MATRIX (1999)", 1), ("  matrix  ", 1), ("The Matrix 1999", 1),
        ("amelie", 2), ("Amélie", 2), ("Le fabuleux destin d'Amelie Poulain", 2),
        ("hamlet (1996)", 4), ("Hamlet 1948", 3),
        ("star wars", 5), ("phantom menace", 6),
        ("blade runner 2049", 9),  # a number in a title is not a year
        ("Il Postino", 10), ("postino", 10),
        ("se7en", 11), ("schindlers list", 12), ("Schindler's List", 12),
        ("5", 5), ("1941", 1941),  # digits are a movieId
        ("godfather part ii", 13), ("Godfather: Part II", 13),
    ],
)
def test_forgiving_matches(index, query, movie_id):
    assert _id(index, query) == movie_id


def test_duplicate_listings_resolve_to_the_most_rated(index):
    assert _id(index, "chasing amy") == 8


def test_ambiguous_title_lists_every_candidate(index):
    with pytest.raises(AmbiguousTitleError) as e:
        index.resolve("Hamlet")
    msg = str(e.value)
    assert "2 movies" in msg and "Hamlet (1948) [id 3]" in msg and "Hamlet (1996) [id 4]" in msg


def test_unknown_title_suggests_the_closest(index):
    with pytest.raises(UnknownIdError, match=r"closest titles: .*Matrix, The \(1999\)"):
        index.resolve("the matrx")
    with pytest.raises(UnknownIdError, match="no movie 'Hamlet \\(2005\\)' from 2005.*Hamlet \\(1948\\)"):
        index.resolve("Hamlet (2005)")
    with pytest.raises(UnknownIdError, match="no movie has id 777"):
        index.resolve("777")
    with pytest.raises(UnknownIdError, match="empty"):
        index.resolve("   ")


def test_search_ranks_by_popularity(index):
    hits = [int(index.movie_ids[i]) for i in index.search("star wars")]
    assert hits[:2] == [5, 6]
    assert index.search("zzzzzz") == []


def test_keys_and_years():
    assert key("Matrix, The") == key("The Matrix") == "matrix"
    assert key("Boot, Das") == "boot"
    assert split_year("Alien (1979)") == ("Alien", 1979)
    assert split_year("Land Before Time III (1995) (V)") == ("Land Before Time III", 1995)
    assert split_year("alien 1979") == ("alien 1979", None)
    assert split_year("alien 1979", bare=True) == ("alien", 1979)


def test_a_typo_still_finds_the_film(index):
    assert int(index.movie_ids[index.search("schindlr's list")[0]]) == 12
    assert int(index.movie_ids[index.search("the matrx")[0]]) == 1
    with pytest.raises(UnknownIdError, match=r"closest titles: Godfather: Part II, The \(1974\) \[id 13\]"):
        index.resolve("godfathr part ii")
    # a typo in one word of a longer title: found through the catalogue's words
    assert [int(index.movie_ids[i]) for i in index.search("phantm")] == [6]
    with pytest.raises(UnknownIdError, match=r"closest titles: Star Wars: Episode I - The Phantom Menace"):
        index.resolve("phantm")


def test_suggestions_are_ranked_by_closeness_not_popularity():
    titles = TitleIndex([1, 2, 3], ["Alien (1979)", "Aliens (1986)", "Alien Resurrection (1997)"], None, [100, 1, 50])
    with pytest.raises(UnknownIdError, match=r"closest titles: Aliens \(1986\) \[id 2\]; Alien \(1979\) \[id 1\]$"):
        titles.resolve("alliens")
    assert [int(titles.movie_ids[i]) for i in titles.search("alliens")] == [2, 1]


def _generated_catalogue(n, seed=0):
    """n made-up titles of consonant-vowel syllables (never "shawshank" or "redemption") with years."""
    import numpy as np

    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    picks, lengths = rng.integers(0, len(syllables), (20_000, 3)), rng.integers(1, 4, 20_000)
    vocabulary = ["".join(syllables[j] for j in row[:m]).capitalize() for row, m in zip(picks, lengths)]
    words, counts, years = rng.integers(0, len(vocabulary), (n, 4)), rng.integers(1, 5, n), rng.integers(1920, 2024, n)
    return [f"{' '.join(vocabulary[j] for j in row[:m])} ({y})" for row, m, y in zip(words, counts, years)]


def test_a_catalogue_of_ml32m_size_answers_fuzzy_and_partial_lookups():
    titles = _generated_catalogue(90_000)
    titles[31_337] = "Shawshank Redemption, The (1994)"
    titles[77_000] = "Shawshank Revisited (2001)"
    popularity = [1.0] * len(titles)
    popularity[77_000] = 5.0
    index = TitleIndex(range(1, len(titles) + 1), titles, None, popularity)
    assert index.resolve("The Shawshank Redemption") == 31_337
    assert index.resolve("redemption 1994") == 31_337  # whole word of a longer key
    with pytest.raises(UnknownIdError, match=r"closest titles: Shawshank Redemption, The \(1994\) \[id 31338\]"):
        index.resolve("shawshank redemtion")
    assert index.search("shawshank redemtion")[0] == 31_337
    assert index.search("shawshank") == [77_000, 31_337]  # both by their words, the most rated first
    with pytest.raises(AmbiguousTitleError, match="'shawshank' matches 2 movies"):
        index.resolve("shawshank")


def test_each_match_says_what_it_matched_and_the_close_alternatives():
    titles = ["Monty Python and the Holy Grail (1974)", "Monty Python's Life of Brian (1979)", "Money Train (1995)",
              "Fargo (1996)", "Chasing Amy (1997)", "Chasing Amy (1997)"]
    index = TitleIndex([168, 154, 540, 100, 7, 8], titles, None, [30, 20, 5, 40, 1, 9])
    m = index.match("monty python")
    assert m.how == "partial" and index.movie_ids[m.movie] == 168
    note = index.match_note("monty python", m)
    assert note.startswith("'monty python' -> Monty Python and the Holy Grail (1974) [id 168]")
    assert "also close: Monty Python's Life of Brian (1979) [id 154]" in note and "Money Train" not in note
    # an exact title or an id says only what it matched
    assert index.match_note("fargo", index.match("fargo")) == "'fargo' -> Fargo (1996) [id 100]"
    assert index.match_note("154", index.match("154")) == "'154' -> Monty Python's Life of Brian (1979) [id 154]"
    # a partial match with nothing else near says so; a duplicate listing says which entry it took
    assert "no other title is close" in index.match_note("holy grail", index.match("holy grail"))
    dup = index.match_note("chasing amy", index.match("chasing amy"))
    assert "[id 8]" in dup and "listed twice" in dup
