"""The ratings-file parser: lines of four numeric fields (user, movie, rating, timestamp), in parallel chunks.

``parse_ratings`` cuts the bytes into chunks at line starts, counts each chunk's lines, and parses
the chunks in parallel straight into int32/int32/float32/int64 arrays; a malformed line, or a number
its type cannot hold (never wrapped around), is returned as a ``ParseFailure`` (status code, line,
byte range) for the caller to turn into an error that names its file. ``content_end`` finds where
trailing whitespace starts; ``first_bad_rating`` finds the first rating off a scale. The
``_kernels`` are pure ``@njit``; each is checked against a reference in ``tests/naive.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from mfrec.errors import DataError

# parse status codes (0 = ok); the failing field is reported so the error can name it
BAD_USER, BAD_MOVIE, BAD_RATING, BAD_TIMESTAMP, BAD_END, EMPTY_LINE, BIG_ID = 1, 2, 3, 4, 5, 6, 7
BIG_TIMESTAMP, BIG_RATING = 8, 9  # a timestamp beyond int64; a rating whose whole part is beyond int64
_ID_MAX = 2**31 - 1  # user and movie ids are stored as int32
_I64_MAX = 2**63 - 1  # timestamps are stored as int64; no parsed number may wrap around it
_V_SAFE = _I64_MAX // 10  # any value below it takes one more digit within int64
_NL, _CR, _MINUS, _DOT = 10, 13, 45, 46
_TAB, _SPACE = 9, 32  # ASCII whitespace: 9..13 and 32, as bytes.strip() has it


@numba.njit(cache=True)
def _next_line_start(buf, pos, end):
    """The index just after the first newline at or after ``pos`` (``end`` if none)."""
    while pos < end:
        if buf[pos] == _NL:
            return pos + 1
        pos += 1
    return end


@numba.njit(cache=True)
def _content_end(buf, start, end):
    """The index just after the last byte of [start, end) that is not ASCII whitespace (``start`` if none)."""
    while end > start:
        b = buf[end - 1]
        if b != _SPACE and not _TAB <= b <= _CR:
            return end
        end -= 1
    return start


@numba.njit(cache=True, parallel=True)
def _count_lines(buf, starts, ends):
    """Lines in each chunk [starts[c], ends[c]); a final line without a newline counts too."""
    n = starts.shape[0]
    counts = np.zeros(n, np.int64)
    for c in numba.prange(n):
        k = 0
        for i in range(starts[c], ends[c]):
            if buf[i] == _NL:
                k += 1
        if ends[c] > starts[c] and buf[ends[c] - 1] != _NL:
            k += 1
        counts[c] = k
    return counts


@numba.njit(cache=True)
def _digits(buf, i, e):
    """The run of decimal digits at ``buf[i:e]`` as an integer: (value, index after it, fits int64).

    Up to 18 digits always fit and are summed in the loop; a longer run is valued again, exactly,
    by ``_long_digits``. A value beyond int64 never wraps around: ``fits`` is False instead.
    """
    v = 0
    j = i
    while j < e and 48 <= buf[j] <= 57:
        if j - i < 18:
            v = v * 10 + (np.int64(buf[j]) - 48)
        j += 1
    if j - i <= 18:
        return v, j, True
    v, fits = _long_digits(buf, i, j)
    return v, j, fits


@numba.njit(cache=True)
def _long_digits(buf, i, j):
    """The value of the digits ``buf[i:j]`` and whether it fits int64 (0, False if not)."""
    v = 0
    for p in range(i, j):
        d = np.int64(buf[p]) - 48
        if v > (_I64_MAX - d) // 10:
            return 0, False
        v = v * 10 + d
    return v, True


@numba.njit(cache=True)
def _parse_int(buf, i, e):
    """The integer (optional minus, digits) at ``buf[i:e]``: (value, index after it, has digits, fits int64)."""
    neg = False
    if i < e and buf[i] == _MINUS:
        neg = True
        i += 1
    v, j, fits = _digits(buf, i, e)
    return (-v if neg else v), j, j > i, fits


@numba.njit(cache=True)
def _parse_decimal(buf, i, e):
    """The decimal (digits [. digits]) at ``buf[i:e]``: (value, index after it, well formed, fits).

    Accumulated as an integer and scaled once: exact for MovieLens' x.0 / x.5. A whole part beyond
    int64 does not fit; fraction digits past the 15th, or past what int64 holds, are read and dropped
    (they lie far below float32's resolution).
    """
    v, j, fits = _digits(buf, i, e)
    ok = j > i
    scale = 1.0
    if ok and j < e and buf[j] == _DOT:
        j += 1
        k = j
        while j < e and 48 <= buf[j] <= 57:
            if fits and j - k < 15 and v < _V_SAFE:  # once one digit is dropped, so are all after it
                v = v * 10 + (np.int64(buf[j]) - 48)
                scale *= 10.0
            j += 1
        ok = j > k
    return v / scale, j, ok, fits


@numba.njit(cache=True)
def _sep(buf, i, e, sep0, sep1, seplen):
    if i < e and buf[i] == sep0:
        if seplen == 1:
            return i + 1, True
        if i + 1 < e and buf[i + 1] == sep1:
            return i + 2, True
    return i, False


@numba.njit(cache=True)
def _parse_chunk(buf, s, e, off, sep0, sep1, seplen, user, movie, rating, ts):
    """Parse the lines of [s, e) into rows off, off+1, ...; return (status, local line, byte pos)."""
    i = s
    k = off
    line = 0
    while i < e:
        start = i
        if buf[i] == _NL or (buf[i] == _CR and (i + 1 >= e or buf[i + 1] == _NL)):
            return EMPTY_LINE, line, start
        u, i, ok, fits = _parse_int(buf, i, e)
        if not ok:
            return BAD_USER, line, start
        if not fits or u < 0 or u > _ID_MAX:
            return BIG_ID, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_USER, line, start
        m, i, ok, fits = _parse_int(buf, i, e)
        if not ok:
            return BAD_MOVIE, line, start
        if not fits or m < 0 or m > _ID_MAX:
            return BIG_ID, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_MOVIE, line, start
        r, i, ok, fits = _parse_decimal(buf, i, e)
        if not ok:
            return BAD_RATING, line, start
        if not fits:
            return BIG_RATING, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_RATING, line, start
        t, i, ok, fits = _parse_int(buf, i, e)
        if not ok:
            return BAD_TIMESTAMP, line, start
        if not fits:
            return BIG_TIMESTAMP, line, start
        if i < e and buf[i] == _CR:
            i += 1
        if i < e:
            if buf[i] != _NL:
                return BAD_END, line, start
            i += 1
        user[k] = u
        movie[k] = m
        rating[k] = r
        ts[k] = t
        k += 1
        line += 1
    return 0, line, e


@numba.njit(cache=True, parallel=True)
def _parse_ratings(buf, starts, ends, offsets, sep0, sep1, seplen, user, movie, rating, ts, status, bad_line, bad_pos):
    """Parse every chunk in parallel; per chunk a status, the failing local line and its byte offset."""
    for c in numba.prange(starts.shape[0]):
        st, ln, pos = _parse_chunk(buf, starts[c], ends[c], offsets[c], sep0, sep1, seplen, user, movie, rating, ts)
        status[c] = st
        bad_line[c] = ln
        bad_pos[c] = pos


@numba.njit(cache=True)
def _first_bad_rating(rating, lo, hi, step):
    """Index of the first rating outside [lo, hi] or off the step grid (NaN included); -1 if none."""
    for i in range(rating.shape[0]):
        r = rating[i]
        if not (r >= lo and r <= hi):
            return i
        q = r / step
        if np.abs(q - np.round(q)) > 1e-4:
            return i
    return -1


class ParseFailure(NamedTuple):
    """The first malformed line: what is wrong with it, which line it is, where its bytes are."""

    code: int  # BAD_USER, BAD_MOVIE, BAD_RATING, BAD_TIMESTAMP, BAD_END, EMPTY_LINE, BIG_ID, BIG_TIMESTAMP or BIG_RATING
    line: int  # 0-based, counted from ``start``
    pos: int  # byte offset of the line's start
    end: int  # byte offset just after the line (after its newline, or ``end``)


def _check_window(buf: np.ndarray, start: int, end: int | None) -> int:
    """``end`` (default: the buffer's length) once ``buf`` is 1-d uint8 and 0 <= start <= end <= len(buf)."""
    if buf.ndim != 1 or buf.dtype != np.uint8:
        raise DataError(f"the parser reads a 1-d uint8 buffer, got {buf.dtype} of shape {buf.shape}")
    end = len(buf) if end is None else end
    if not 0 <= start <= end <= len(buf):
        raise DataError(f"cannot parse bytes {start}..{end} of a {len(buf)}-byte buffer")
    return end


def content_end(buf: np.ndarray, start: int = 0, end: int | None = None) -> int:
    """The index just after the last non-whitespace byte of ``buf[start:end]``, ``start`` if it is all whitespace.

    Trailing blank lines, spaces, tabs and CRs are cut off this way before parsing: one pass from
    the end, touching only the whitespace it skips (bytes.rstrip()'s ASCII whitespace).
    """
    end = _check_window(buf, start, end)
    return int(_content_end(buf, start, end))


def parse_ratings(buf: np.ndarray, sep: bytes, start: int = 0, end: int | None = None, n_chunks: int | None = None):
    """Parse the lines of ``buf[start:end]`` (bytes, e.g. a memory map) of four ``sep``-separated numbers.

    Returns ``(user int32, movie int32, rating float32, timestamp int64, failure)``: ``failure`` is
    None, or the first malformed line as a :class:`ParseFailure` (the arrays are then incomplete).
    A last line without a newline counts; an empty line is malformed. ``n_chunks`` (default: one
    per 4 MiB, at most 64) only sets how the work is split, never the result.
    """
    end = _check_window(buf, start, end)
    if len(sep) not in (1, 2):
        raise DataError(f"the field separator must be one or two bytes, got {sep!r}")
    if n_chunks is None:
        n_chunks = max(1, min(64, (end - start) // (1 << 22)))
    if n_chunks < 1:
        raise DataError(f"the parser needs at least one chunk, got {n_chunks}")
    cuts = [start] + [int(_next_line_start(buf, start + (end - start) * c // n_chunks, end)) for c in range(1, n_chunks)] + [end]
    starts = np.array(cuts[:-1], np.int64)
    ends = np.array(cuts[1:], np.int64)
    counts = _count_lines(buf, starts, ends)
    offsets = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    n = int(counts.sum())
    user = np.empty(n, np.int32)
    movie = np.empty(n, np.int32)
    rating = np.empty(n, np.float32)
    ts = np.empty(n, np.int64)
    status = np.zeros(len(counts), np.int64)
    bad_line = np.zeros(len(counts), np.int64)
    bad_pos = np.zeros(len(counts), np.int64)
    sep1 = sep[1] if len(sep) > 1 else 0
    _parse_ratings(buf, starts, ends, offsets, sep[0], sep1, len(sep), user, movie, rating, ts, status, bad_line, bad_pos)
    failure = None
    failed = np.flatnonzero(status)
    if len(failed):
        c = int(failed[0])
        pos = int(bad_pos[c])
        failure = ParseFailure(int(status[c]), int(offsets[c] + bad_line[c]), pos, int(_next_line_start(buf, pos, end)))
    return user, movie, rating, ts, failure


def first_bad_rating(rating: np.ndarray, lo: float, hi: float, step: float) -> int:
    """Index of the first rating outside [lo, hi] or off the ``step`` grid (NaN included); -1 if none."""
    rating = np.ascontiguousarray(rating, dtype=np.float32)
    if rating.ndim != 1:
        raise DataError(f"ratings must be a 1-d array, got shape {rating.shape}")
    if not step > 0:
        raise DataError(f"the rating step must be positive, got {step}")
    return int(_first_bad_rating(rating, lo, hi, step))
