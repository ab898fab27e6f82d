"""Every MovieLens reader on tiny hand-written files in the release's real format.

The builders here (``write_ml100k`` ...) are also used by the other data, CLI and download tests.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from mfrec.data.movielens import canonical_test_pairs, decode_text, parse_year, read_dataset

GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
               "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES_100K)


# ml-100k: (user, movie, rating, timestamp); u1.test takes the rows marked True
ML100K_RATINGS = [
    (1, 10, 5, 881250949, False), (1, 20, 3, 881250950, True), (1, 30, 4, 881250951, False),
    (2, 10, 1, 891717742, False), (2, 543, 4, 891717743, True), (2, 30, 2, 891717744, False),
    (3, 543, 5, 878887116, False), (3, 20, 4, 878887117, False), (3, 267, 3, 878887118, True),
    (3, 10, 2, 878887119, False),
]


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t, _ in ML100K_RATINGS))
    kids = "Children's"
    items = [
        f"10|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{_flags('Animation', kids, 'Comedy')}",
        f"20|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||http://x|{_flags('Animation')}",
        f"30|Seven (Se7en) (1995)|01-Jan-1995||http://x|{_flags('Crime', 'Thriller')}",
        f"267|unknown||||{_flags('unknown')}",
        f"543|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis%E9rables|{_flags('Drama', 'Musical')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|T8H1N\n")
    base = [r for r in ML100K_RATINGS if not r[4]]
    test = [r for r in ML100K_RATINGS if r[4]]
    (folder / "u1.base").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t, _ in base))
    (folder / "u1.test").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t, _ in test))
    return folder


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n2::2::4::978298413\n2::3::1::978299000\n")
    movies = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Misérables, Les (1995)::Drama|Musical\n3::City of Lost Children, The (1995)::Adventure|Sci-Fi\n"
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def write_ml10m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::1049764000\n7::4000::3::1049765000\n")
    movies = "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n".encode("utf-8")
    # a stray ISO-8859-1 byte in an otherwise UTF-8 file must not crash the reader
    movies += "4000::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::(no genres listed)\n".encode("latin-1")
    (folder / "movies.dat").write_bytes(movies)
    return folder


def write_ml25m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,1147880044\n1,2,3.5,1147868817\n2,1,0.5,1147868828\n"
        "2,3,5.0,1147878820\n2,4,2.5,1147868510\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n'
        '3,"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)",Comedy|Romance\n'
        '4,"Babylon 5, ""The Gathering""",(no genres listed)\n',
        encoding="utf-8",
    )
    return folder


def zip_folder(folder: Path, zip_path: Path, inner: str) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{inner}/{f.name}")
    return zip_path


# -- the readers, against hand-written expectations -------------------------------------------
def test_ml100k_reads_tabs_pipes_latin1_and_genre_flags(tmp_path):
    raw = read_dataset("ml-100k", source=write_ml100k(tmp_path / "ml-100k"))
    assert raw.ratings.height == 10 and raw.rating_scale == (1.0, 5.0) and raw.rating_step == 1.0
    assert raw.ratings.row(0) == (1, 10, 5.0, 881250949)
    movies = {r["movieId"]: r for r in raw.movies.iter_rows(named=True)}
    assert movies[543]["title"] == "Misérables, Les (1995)" and movies[543]["year"] == 1995
    assert movies[543]["genres"] == ["Drama", "Musical"]
    assert movies[10]["genres"] == ["Animation", "Children's", "Comedy"]
    assert movies[267] == {"movieId": 267, "title": "unknown", "year": None, "genres": []}  # "unknown" genre = none
    assert movies[20]["year"] == 1995  # "(1995) (V)"
    assert movies[30]["title"] == "Seven (Se7en) (1995)"
    users = raw.users.sort("userId").to_dicts()
    assert users[0] == {"userId": 1, "gender": "M", "age": 24, "occupation": "technician", "zip": "85711"}
    assert users[2]["zip"] == "T8H1N"
    assert raw.extra["movies_encoding"] == "iso-8859-1"


def test_ml100k_canonical_split_pairs_and_counts(tmp_path):
    raw = read_dataset("ml-100k", source=write_ml100k(tmp_path / "d"))
    pairs = canonical_test_pairs(raw, "u1")
    assert sorted(pairs.rows()) == [(1, 20), (2, 543), (3, 267)]
    with pytest.raises(Exception, match="u2.base and u2.test"):
        canonical_test_pairs(raw, "u2")


def test_ml1m_dat_latin1_users_with_demographics(tmp_path):
    raw = read_dataset("ml-1m", source=write_ml1m(tmp_path / "ml-1m"))
    assert raw.ratings.rows() == [(1, 1, 5.0, 978300760), (1, 2, 3.0, 978302109), (2, 2, 4.0, 978298413), (2, 3, 1.0, 978299000)]
    assert raw.movies.filter(raw.movies["movieId"] == 2).row(0) == (2, "Misérables, Les (1995)", 1995, ["Drama", "Musical"])
    assert raw.users.to_dicts()[1] == {"userId": 2, "gender": "M", "age": 56, "occupation": 16, "zip": "70072"}


def test_ml10m_half_stars_no_users_and_a_stray_latin1_byte(tmp_path):
    raw = read_dataset("ml-10m", source=write_ml10m(tmp_path / "ml-10M100K"))
    assert raw.users is None and raw.rating_scale == (0.5, 5.0)
    assert raw.ratings["rating"].to_list() == [5.0, 4.5, 0.5, 3.0]
    amelie = raw.movies.filter(raw.movies["movieId"] == 4000).row(0, named=True)
    assert amelie["title"] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    assert amelie["genres"] == [] and amelie["year"] == 2001
    assert raw.movies.filter(raw.movies["movieId"] == 185)["genres"].to_list() == [["Action", "Crime", "Thriller"]]


@pytest.mark.parametrize("dataset", ["ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest"])
def test_csv_releases_quoted_commas_half_stars_no_genres(tmp_path, dataset):
    raw = read_dataset(dataset, source=write_ml25m(tmp_path / dataset))
    assert raw.ratings.rows() == [
        (1, 1, 4.0, 1147880044), (1, 2, 3.5, 1147868817), (2, 1, 0.5, 1147868828), (2, 3, 5.0, 1147878820), (2, 4, 2.5, 1147868510),
    ]
    m = {r["movieId"]: r for r in raw.movies.iter_rows(named=True)}
    assert m[2]["title"] == "American President, The (1995)" and m[2]["genres"] == ["Comedy", "Drama", "Romance"]
    assert m[3]["title"] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)" and m[3]["year"] == 2001
    assert m[4] == {"movieId": 4, "title": 'Babylon 5, "The Gathering"', "year": None, "genres": []}
    assert raw.users is None


def test_zip_source_and_folder_holding_the_extracted_folder(tmp_path):
    folder = write_ml1m(tmp_path / "src" / "ml-1m")
    from_parent = read_dataset("ml-1m", source=tmp_path / "src")  # the folder that contains ml-1m/
    z = zip_folder(folder, tmp_path / "ml-1m.zip", "ml-1m")
    from_zip = read_dataset("ml-1m", source=z)
    for a, b in ((from_parent.ratings, from_zip.ratings), (from_parent.movies, from_zip.movies), (from_parent.users, from_zip.users)):
        assert a.equals(b)
    assert from_zip.source == str(z)
    assert read_dataset("ml-1m", source=folder / "ratings.dat").ratings.equals(from_zip.ratings)  # a file: its folder
    raw100 = read_dataset("ml-100k", source=zip_folder(write_ml100k(tmp_path / "h"), tmp_path / "ml-100k.zip", "ml-100k"))
    assert sorted(canonical_test_pairs(raw100, "u1").rows()) == [(1, 20), (2, 543), (3, 267)]


def test_parse_year_and_decoding():
    assert parse_year("Toy Story (1995)") == 1995
    assert parse_year("Babylon 5") is None
    assert parse_year("Cosmos (1980-1981)") == 1980
    assert parse_year("Jeux (Year 2) (2003)") == 2003
    text, enc = decode_text("Misérables\n".encode("latin-1") + "Amélie\n".encode("utf-8"))
    assert text == "Misérables\nAmélie\n" and enc == "mixed"
    assert decode_text("plain\n".encode())[1] == "utf-8"


def test_large_file_is_parsed_in_parallel_chunks_exactly(tmp_path):
    """Above 4 MB the parser splits the file into chunks at line boundaries; nothing is lost or doubled."""
    n = 400_000
    rng = np.random.default_rng(0)
    u = rng.integers(1, 5000, n)
    m = rng.integers(1, 900, n)
    r = rng.integers(1, 11, n) / 2
    t = rng.integers(800_000_000, 1_500_000_000, n)
    folder = tmp_path / "big"
    folder.mkdir()
    lines = "".join(f"{a},{b},{c:.1f},{d}\r\n" for a, b, c, d in zip(u, m, r, t))  # CRLF line ends too
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + lines)
    assert (folder / "ratings.csv").stat().st_size > 8 << 20
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(f"{i},M {i} (2000),Drama\n" for i in range(1, 900)))
    raw = read_dataset("ml-latest", source=folder)
    np.testing.assert_array_equal(raw.ratings["userId"].to_numpy(), u)
    np.testing.assert_array_equal(raw.ratings["movieId"].to_numpy(), m)
    np.testing.assert_array_equal(raw.ratings["rating"].to_numpy(), r.astype(np.float32))
    np.testing.assert_array_equal(raw.ratings["timestamp"].to_numpy(), t)


def test_a_folder_of_several_releases_asks_for_the_right_one(tmp_path):
    from mfrec.errors import DataError

    write_ml1m(tmp_path / "all" / "ml-1m")
    write_ml10m(tmp_path / "all" / "ml-10M100K")
    with pytest.raises(DataError, match=r"several folders with a ratings.dat \(ml-10M100K, ml-1m\)"):
        read_dataset("ml-1m", source=tmp_path / "all")
    with pytest.raises(DataError, match="has no ratings.csv"):
        read_dataset("ml-25m", source=tmp_path / "all")


# -- the ratings file's edges: numbers too large for their column, trailing whitespace -----------
RATINGS_HEADER = "userId,movieId,rating,timestamp\n"


@pytest.mark.parametrize("line, message", [
    ("18446744073709551617,1,4.0,1147880044", "line 3: a user or movie id is negative or above 2,147,483,647"),
    ("1,18446744073709551617,4.0,1147880044", "line 3: a user or movie id is negative or above 2,147,483,647"),
    ("1,2,4.0,18446744073709551621", "line 3: the timestamp is beyond"),
    ("1,2,18446744073709551620,1147880044", "line 3: the rating is above 9,223,372,036,854,775,807"),
])
def test_numbers_too_large_for_their_column_are_refused_with_the_line(tmp_path, line, message):
    """Once these wrapped around: user 2**64+1 became user 1, and a wrapped timestamp won "keep the latest"."""
    from mfrec.errors import DataError

    folder = write_ml25m(tmp_path / "ml")
    (folder / "ratings.csv").write_text(RATINGS_HEADER + "1,1,4.0,1147880044\n" + line + "\n2,1,0.5,1147868828\n")
    with pytest.raises(DataError, match=message) as err:
        read_dataset("ml-25m", source=folder)
    assert "truncated" not in str(err.value)


@pytest.mark.parametrize("tail", ["\n", "", "\r\n", "\n" * 5000, "\r\n\r\n  \t\n\n", " \t"])
def test_trailing_blank_lines_and_whitespace_are_ignored(tmp_path, tail):
    folder = write_ml25m(tmp_path / "ml")
    body = "1,1,4.0,1147880044\r\n1,2,3.5,1147868817"
    (folder / "ratings.csv").write_text(RATINGS_HEADER + body + tail, newline="")
    assert read_dataset("ml-25m", source=folder).ratings.rows() == [(1, 1, 4.0, 1147880044), (1, 2, 3.5, 1147868817)]


@pytest.mark.parametrize("dataset, name, header", [("ml-25m", "ratings.csv", RATINGS_HEADER), ("ml-1m", "ratings.dat", "")])
def test_whitespace_only_files_and_inner_blank_lines(tmp_path, dataset, name, header):
    from mfrec.errors import DataError

    folder = (write_ml25m if header else write_ml1m)(tmp_path / "ml")
    sep = "," if header else "::"
    cases = [
        ("\n\n  \r\n\t\n", f"{name} is empty"),
        (" ", f"{name} is empty"),
        (header + f"1{sep}1{sep}4{sep}1\n\n1{sep}2{sep}3{sep}1\n\n", f"{name} line {2 + bool(header)} is empty"),
    ]
    if header:
        cases.append((header + "\n\n \r\n", rf"{name} has no ratings \(only the header\)"))
    for text, message in cases:
        (folder / name).write_text(text, newline="")
        with pytest.raises(DataError, match=message):
            read_dataset(dataset, source=folder)
