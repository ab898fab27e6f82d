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
