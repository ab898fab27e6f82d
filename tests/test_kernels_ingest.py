"""The data-pipeline kernels (parser, counting sort, de-duplication, gather, partition, synthetic
generator) against the references in tests/naive.py, with edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from mfrec.errors import DataError
from mfrec.kernels.parse import (BAD_END, BAD_MOVIE, BAD_RATING, BIG_ID, BIG_RATING, BIG_TIMESTAMP, EMPTY_LINE, content_end,
                                 first_bad_rating, parse_ratings)
from mfrec.kernels.sort import counting_sort, gather, group_by_user, partition
from mfrec.kernels.synthetic import generate_ratings

from naive import naive_content_end, naive_counting_sort, naive_group_dedupe, naive_parse_line, naive_parse_ratings

pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("sep", [",", "\t", "::"])
@pytest.mark.parametrize("n_chunks", [1, 3, 7])
def test_parser_matches_reference(sep, n_chunks):
    rng = np.random.default_rng(1)
    rows = [(int(rng.integers(1, 99999)), int(rng.integers(1, 300000)), float(rng.integers(1, 11)) / 2, int(rng.integers(0, 2**40)))
            for _ in range(300)]
    text = "".join(f"{u}{sep}{m}{sep}{r:g}{sep}{t}" + ("\r\n" if i % 7 == 0 else "\n") for i, (u, m, r, t) in enumerate(rows))
    u, m, r, t, failure = parse_ratings(np.frombuffer(text.encode(), np.uint8), sep.encode(), n_chunks=n_chunks)
    assert failure is None
    wu, wm, wr, wt = naive_parse_ratings(text, sep)
    assert u.tolist() == wu and m.tolist() == wm and r.tolist() == wr and t.tolist() == wt


def test_parser_reads_one_line_without_a_newline_and_a_window_of_the_buffer():
    buf = np.frombuffer(b"HEADER\n7,8,4.5,99", np.uint8)
    u, m, r, t, failure = parse_ratings(buf, b",", start=7)
    assert failure is None and (u.tolist(), m.tolist(), r.tolist(), t.tolist()) == ([7], [8], [4.5], [99])
    u, *_, failure = parse_ratings(buf, b",", start=7, end=7)  # no bytes: no lines
    assert failure is None and len(u) == 0


def test_parser_reports_the_first_bad_line_and_field():
    text = b"1,2,3,4\n5,6,7,8\n9,x,1,2\n3,4,5,6\n"
    *_, failure = parse_ratings(np.frombuffer(text, np.uint8), b",", n_chunks=1)
    assert failure == (BAD_MOVIE, 2, 16, 24)
    *_, failure = parse_ratings(np.frombuffer(b"1,2,3,4\n\n5,6,7,8\n", np.uint8), b",", n_chunks=1)
    assert (failure.code, failure.line) == (EMPTY_LINE, 1)
    # a failure in a later chunk is numbered from the start of the buffer
    text = b"".join(b"%d,1,1,1\n" % i for i in range(40)) + b"1,2,3,4,5\n"
    *_, failure = parse_ratings(np.frombuffer(text, np.uint8), b",", n_chunks=4)
    assert (failure.code, failure.line, text[failure.pos:failure.end]) == (BAD_END, 40, b"1,2,3,4,5\n")


I64 = 2**63 - 1


@pytest.mark.parametrize("line, code", [
    (b"18446744073709551617,2,4.0,5", BIG_ID),  # 2**64 + 1 once wrapped around to user 1
    (b"1,18446744073709551618,4.0,5", BIG_ID),
    (b"99999999999999999999999999999,2,4.0,5", BIG_ID),
    (b"-18446744073709551615,2,4.0,5", BIG_ID),  # wrapped to +1
    (b"2147483648,2,4.0,5", BIG_ID),
    (b"1,2,4.0,18446744073709551621", BIG_TIMESTAMP),  # once wrapped to 5
    (b"1,2,4.0,%d" % (I64 + 1), BIG_TIMESTAMP),
    (b"1,2,4.0,-%d" % (I64 + 1), BIG_TIMESTAMP),
    (b"1,2,18446744073709551620,5", BIG_RATING),  # once wrapped to rating 4
    (b"1,2,%d.5,5" % (I64 + 1), BIG_RATING),
    (b"1,2,-4.0,5", BAD_RATING),
])
def test_parser_rejects_numbers_its_types_cannot_hold(line, code):
    for text in (line, line + b"\r\n", b"1,1,1,1\n" + line + b"\n"):
        *_, failure = parse_ratings(np.frombuffer(text, np.uint8), b",")
        assert failure is not None and failure.code == code, (text, failure)
        assert failure.line == text.count(b"\n", 0, failure.pos)


def test_parser_reads_the_largest_numbers_and_long_digit_strings_exactly():
    text = (b"2147483647,0000000000000000000000000002147483647,%d.%s,%d\n" % (I64, b"9" * 30, I64)
            + b"1,2,18450.744073709551616,-%d\n" % I64  # a wrapped integer part once made this rating 4.0
            + b"0,0,4.50000000000000000000000001,0\n")
    u, m, r, t, failure = parse_ratings(np.frombuffer(text, np.uint8), b",")
    assert failure is None
    assert u.tolist() == [2**31 - 1, 1, 0] and m.tolist() == [2**31 - 1, 2, 0] and t.tolist() == [I64, -I64, 0]
    assert r.tolist() == np.array([float(I64), 18450.744073709551616, 4.5], np.float32).tolist()


def _digits(rng, longest):
    """A run of 1..longest digits, sometimes with leading zeros."""
    body = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, longest + 1))))
    return "0" * int(rng.integers(0, 25)) + body if rng.random() < 0.2 else body


@pytest.mark.parametrize("n_chunks", [1, 4])
def test_parser_matches_reference_on_numbers_of_any_length(n_chunks):
    """Random digit strings up to 25 digits in every field: each value is the reference's, or the line is refused."""
    rng = np.random.default_rng(5)
    codes = {"user": BIG_ID, "movie": BIG_ID, "rating": BIG_RATING, "timestamp": BIG_TIMESTAMP}
    good, n_refused = [], 0
    for _ in range(300):
        sign = lambda: "-" if rng.random() < 0.1 else ""  # noqa: E731
        rating = _digits(rng, 22) + ("." + _digits(rng, 25) if rng.random() < 0.6 else "")
        line = f"{sign()}{_digits(rng, 12)},{sign()}{_digits(rng, 12)},{rating},{sign()}{_digits(rng, 22)}"
        want = naive_parse_line(line, ",")
        u, m, r, t, failure = parse_ratings(np.frombuffer(line.encode(), np.uint8), b",")
        if isinstance(want, str):
            assert failure is not None and failure.code == codes[want], (line, failure)
            n_refused += 1
        else:
            assert failure is None, (line, failure)
            assert (u[0], m[0], r[0], t[0]) == (want[0], want[1], np.float32(want[2]), want[3]), line
            good.append(line)
    assert 50 < n_refused < 250  # both kinds of line were tried
    text = "\n".join(good)
    u, m, r, t, failure = parse_ratings(np.frombuffer(text.encode(), np.uint8), b",", n_chunks=n_chunks)
    want = [naive_parse_line(line, ",") for line in good]
    assert failure is None
    assert list(zip(u.tolist(), m.tolist(), t.tolist())) == [(w[0], w[1], w[3]) for w in want]
    assert r.tolist() == np.array([w[2] for w in want], np.float32).tolist()


@pytest.mark.parametrize("data", [
    b"1,2,3,4\n", b"1,2,3,4", b"1,2,3,4\r\n\r\n", b"1,2,3,4\n\n\n \t\n\x0b\x0c\r\n  ", b"1,2,3,4 \t",
    b"", b"\n", b" \t\r\n\n\n", b"x\n" + b"\n" * 10_000,
])
def test_content_end_matches_reference(data):
    buf = np.frombuffer(data, np.uint8)
    for start in range(min(len(data), 4) + 1):
        for end in (start, len(data)):
            assert content_end(buf, start, end) == naive_content_end(data, start, end), (data, start, end)
    assert content_end(buf) == naive_content_end(data, 0, len(data))
    with pytest.raises(DataError, match="cannot parse bytes"):
        content_end(buf, 1, 0)


def test_parser_rejects_a_bad_separator_or_window():
    buf = np.frombuffer(b"1,2,3,4\n", np.uint8)
    with pytest.raises(DataError, match="one or two bytes"):
        parse_ratings(buf, b"")
    with pytest.raises(DataError, match="cannot parse bytes"):
        parse_ratings(buf, b",", start=3, end=2)


def test_first_bad_rating():
    assert first_bad_rating(np.array([1, 2.5, 5], np.float32), 0.5, 5.0, 0.5) == -1
    assert first_bad_rating(np.array([1, 2.5, 5.5], np.float32), 0.5, 5.0, 0.5) == 2
    assert first_bad_rating(np.array([1, 2.5, 3], np.float32), 1.0, 5.0, 1.0) == 1
    assert first_bad_rating(np.array([np.nan], np.float32), 1.0, 5.0, 1.0) == 0
    assert first_bad_rating(np.zeros(0, np.float32), 1.0, 5.0, 1.0) == -1


def test_group_dedupe_matches_reference_with_ties_and_duplicates():
    rng = np.random.default_rng(2)
    n = 400
    user = rng.integers(0, 12, n).astype(np.int32)
    movie = rng.integers(0, 25, n).astype(np.int32)  # many duplicate (user, movie) pairs
    ts = rng.integers(0, 30, n).astype(np.int64)  # and many equal timestamps
    order, dropped = group_by_user(user, movie, ts, 14, 25)  # users 12 and 13 have no ratings
    want, want_dropped = naive_group_dedupe(user.tolist(), movie.tolist(), ts.tolist())
    assert order.tolist() == want and dropped == want_dropped > 0
    order, dropped = group_by_user(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int64), 1, 1)
    assert order.tolist() == [0] and dropped == 0
    with pytest.raises(DataError, match="movie index"):
        group_by_user(np.zeros(1, np.int32), np.array([25], np.int32), np.zeros(1, np.int64), 1, 25)


@pytest.mark.parametrize("n", [200, 1, 0])
def test_counting_sort_gather_and_partition_match_references(n):
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 9, n).astype(np.int32)
    indptr, order = counting_sort(keys, 11)  # two empty keys at the end
    want_ptr, want_order = naive_counting_sort(keys, 11)
    np.testing.assert_array_equal(indptr, want_ptr)
    np.testing.assert_array_equal(order, want_order.reshape(-1))
    np.testing.assert_array_equal(gather(keys, order), keys[order])
    codes = rng.integers(0, 3, n).astype(np.int8)
    rows = rng.permutation(n).astype(np.int64)
    src = [np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32) * 2, np.arange(n, dtype=np.int64) * 3,
           np.arange(n, dtype=np.float32) / 2]
    *outs, counts = partition(codes, rows, *src)
    within = np.argsort(codes, kind="stable")
    for a, o in zip(src, outs):
        assert o.dtype == a.dtype
        np.testing.assert_array_equal(o, a[rows[within]])
    np.testing.assert_array_equal(counts, np.bincount(codes, minlength=3))


def test_sort_wrappers_reject_indices_out_of_range():
    with pytest.raises(DataError, match="key index outside 0..1"):
        counting_sort(np.array([2], np.int32), 2)
    with pytest.raises(DataError, match="split code"):
        partition(np.array([3], np.int8), np.array([0]), *(np.zeros(1) for _ in range(4)))


def _generator_inputs(seed=0, n_users=40, n_movies=30, k=3):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 16, n_users)
    counts[0], counts[1] = 0, n_movies  # a user with no ratings, a user who rates every movie
    return dict(counts=counts, movie_cdf=np.cumsum(rng.random(n_movies)), mu=3.5, user_bias=rng.normal(0, 0.3, n_users),
                movie_bias=rng.normal(0, 0.3, n_movies), user_factors=rng.normal(0, 0.3, (n_users, k)),
                movie_factors=rng.normal(0, 0.3, (n_movies, k)), noise=0.7, start=1e9 + rng.random(n_users) * 1e6,
                span=rng.random(n_users) * 1e5 + 10.0)


# splitmix64 relies on uint64 wrap-around, which NumPy scalars do too (with a warning) under NUMBA_DISABLE_JIT
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_generated_ratings_keep_their_promises():
    args = _generator_inputs()
    movie, rating, ts = generate_ratings(seed=7, scale=(0.5, 5.0, 0.5), **args)
    counts = args["counts"]
    assert len(movie) == len(rating) == len(ts) == counts.sum()
    bounds = np.r_[0, np.cumsum(counts)]
    for u in range(len(counts)):
        m, t = movie[bounds[u]:bounds[u + 1]], ts[bounds[u]:bounds[u + 1]]
        assert len(set(m.tolist())) == len(m)  # a movie at most once per user
        assert np.all(np.diff(t) > 0) and np.all(t >= np.floor(args["start"][u]))
    assert set(movie[bounds[1]:bounds[2]].tolist()) == set(range(30))
    assert rating.min() >= 0.5 and rating.max() <= 5.0 and np.all(rating * 2 == np.round(rating * 2))
    again = generate_ratings(seed=7, scale=(0.5, 5.0, 0.5), **args)
    other = generate_ratings(seed=8, scale=(0.5, 5.0, 0.5), **args)
    assert all(np.array_equal(a, b) for a, b in zip((movie, rating, ts), again))
    assert not np.array_equal(movie, other[0])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_generator_rejects_impossible_counts():
    args = _generator_inputs()
    args["counts"][2] = 31
    with pytest.raises(DataError, match="more than all 30 movies"):
        generate_ratings(seed=0, scale=(1.0, 5.0, 1.0), **args)
