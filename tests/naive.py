"""Slow, obviously-correct NumPy references that the Numba kernels are checked against."""


# -- ranking: references for mfrec.evaluation.ranking.top_k and mfrec.kernels.ranking --
def naive_top_k(scores, excluded_per_row, k):
    """Top-k per row by a full stable sort: score descending, movie index ascending on ties; -1 pads."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float32)
    out = np.full((scores.shape[0], k), -1, np.int32)
    for i, row in enumerate(scores):
        cands = [m for m in range(len(row)) if m not in set(excluded_per_row[i])]
        cands.sort(key=lambda m: (-float(row[m]), m))
        out[i, : min(k, len(cands))] = cands[:k]
    return out


def naive_user_metrics(topk, targets, history, movie_genres):
    """(hit, ndcg, recall, genre Jaccard, n_targets) per row, straight from the definitions."""
    import math

    import numpy as np

    rows = []
    for items, tgt, hist in zip(topk, targets, history):
        rec = [int(m) for m in items if m >= 0]
        tgt = set(tgt)
        hits = [r for r, m in enumerate(rec) if m in tgt]
        dcg = sum(1 / math.log2(r + 2) for r in hits)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(tgt), len(items))))
        hg = set(g for m in hist for g in movie_genres[m])
        rg = set(g for m in rec for g in movie_genres[m])
        jac = len(hg & rg) / len(hg | rg) if hg | rg else 0.0
        rows.append((1.0 if hits else 0.0, dcg / idcg if idcg else 0.0, len(hits) / len(tgt) if tgt else 0.0, jac, len(tgt)))
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


# -- top-k: references for mfrec.kernels.topk, and the explanation decomposition --------
def naive_topk_filtered(scores, row_bias, col_bias, allowed, excluded_per_row, k):
    """(indices, scores) of the k best allowed, non-excluded columns of scores + row_bias + col_bias
    per row, by a full sort (score descending, index ascending on ties); -1 / NaN pad."""
    import numpy as np

    scores = np.asarray(scores, np.float32)
    out_i = np.full((scores.shape[0], k), -1, np.int32)
    out_s = np.full((scores.shape[0], k), np.nan, np.float32)
    for r, row in enumerate(scores):
        total = (row + np.float32(row_bias[r]) + np.asarray(col_bias, np.float32)).astype(np.float32)
        skip = set(int(m) for m in excluded_per_row[r])
        cands = [m for m in range(len(row)) if allowed[m] and m not in skip and not np.isnan(total[m])]
        cands.sort(key=lambda m: (-float(total[m]), m))
        cands = cands[:k]
        out_i[r, : len(cands)] = cands
        out_s[r, : len(cands)] = total[cands]
    return out_i, out_s


def naive_explain(item_factors, movie_bias, mu, rated, ratings, targets, reg, reg_bias, weighted, prior=None):
    """Per-rating contributions c[t, j] = t_j [1, y_t]^T A^-1 [1, y_j] straight from the normal
    equations A = sum_j [1, y_j][1, y_j]^T + diag(reg_bias, lam, ..., lam) (+ P), t_j = r_j - mu - b_j,
    lam = reg * n (weighted) or reg; also the folded-in [b_u, p_u] = A^-1 (sum_j t_j [1, y_j] + P m).
    ``prior`` = (m, P) adds the population prior; then a third value, [1, y_t]^T A^-1 P m per target."""
    import numpy as np

    Y = np.asarray(item_factors, np.float64)
    rated = np.asarray(rated)
    Z = np.concatenate([np.ones((len(rated), 1)), Y[rated]], axis=1)
    t = np.asarray(ratings, np.float64) - mu - np.asarray(movie_bias, np.float64)[rated]
    lam = reg * len(rated) if weighted else reg
    A = Z.T @ Z + np.diag([reg_bias] + [lam] * Y.shape[1])
    pm = np.zeros(Y.shape[1] + 1)
    if prior is not None:
        A = A + np.asarray(prior[1], np.float64)
        pm = np.asarray(prior[1], np.float64) @ np.asarray(prior[0], np.float64)
    Ainv = np.linalg.inv(A)
    T = np.concatenate([np.ones((len(targets), 1)), Y[np.asarray(targets)]], axis=1)
    contrib = (T @ Ainv @ Z.T) * t[None, :]
    if prior is None:
        return contrib, Ainv @ (Z.T @ t)
    return contrib, Ainv @ (Z.T @ t + pm), T @ Ainv @ pm


# -- ALS engine: references for mfrec.kernels.als and mfrec.kernels.predict -----------
def naive_normal_equations(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, weighted, r,
                           row_shift=None, reg_exponent=1.0):
    """Row r's ridge normal equations A z = rhs for z = [bias, factors] (None for an empty row)."""
    import numpy as np

    fixed = np.asarray(fixed, np.float64)
    k = fixed.shape[1]
    cols = np.asarray(indices[indptr[r]:indptr[r + 1]])
    if len(cols) == 0:
        return None
    t = np.asarray(values[indptr[r]:indptr[r + 1]], np.float64) - mu - np.asarray(fixed_bias, np.float64)[cols]
    if row_shift is not None:
        t = t - fixed[cols] @ np.asarray(row_shift, np.float64)[r]
    X = np.hstack([np.ones((len(cols), 1)), fixed[cols]])
    lam = reg * len(cols) ** reg_exponent if weighted else reg
    D = np.diag([reg_bias] + [lam] * k)
    return X.T @ X + D, X.T @ t


def naive_solve_rows(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, weighted, row_shift=None,
                     reg_exponent=1.0):
    """Every row's ridge regression for [bias, factors] by np.linalg.solve on the dense normal equations."""
    import numpy as np

    n_rows, k = len(indptr) - 1, np.shape(fixed)[1]
    out_f = np.zeros((n_rows, k))
    out_b = np.zeros(n_rows)
    for r in range(n_rows):
        system = naive_normal_equations(indptr, indices, values, fixed, fixed_bias, mu, reg, reg_bias, weighted, r,
                                        row_shift, reg_exponent)
        if system is None:
            continue
        z = np.linalg.solve(*system)
        out_b[r], out_f[r] = z[0], z[1:]
    return out_f, out_b


def naive_genre_factors(movie_rows, n_genres, genre_lists, mu, user_bias, movie_bias, P, Q, reg, weighted,
                        reg_exponent=1.0):
    """Genre factors y by a dense least-squares solve over vec(y): one equation per rating.

    ``movie_rows`` is a list of (movie, users, ratings); ``genre_lists[i]`` the genres of movie i."""
    import numpy as np

    P = np.asarray(P, np.float64)
    k = P.shape[1]
    rows, rhs = [], []
    n_g = np.zeros(n_genres)
    for i, users, ratings in movie_rows:
        gs = genre_lists[i]
        for u, r in zip(users, ratings):
            e = r - mu - user_bias[u] - movie_bias[i] - P[u] @ np.asarray(Q[i], np.float64)
            if not gs:
                continue
            x = np.zeros(n_genres * k)
            for g in gs:
                x[g * k:(g + 1) * k] += P[u] / np.sqrt(len(gs))
                n_g[g] += 1
            rows.append(x)
            rhs.append(e)
    X = np.array(rows).reshape(-1, n_genres * k)
    lam = reg * np.maximum(n_g, 1.0) ** reg_exponent if weighted else np.full(n_genres, reg)
    y = np.linalg.solve(X.T @ X + np.diag(np.repeat(lam, k)), X.T @ np.array(rhs))
    return y.reshape(n_genres, k)


def naive_effective_movie_factors(movie_factors, genre_factors, genre_lists):
    """q_i + |G_i|^-1/2 sum_{g in G_i} y_g per movie, by a loop over each movie's genre list."""
    import numpy as np

    q = np.asarray(movie_factors, np.float64).copy()
    y = np.asarray(genre_factors, np.float64)
    for i, gs in enumerate(genre_lists):
        if len(gs) and len(y):
            q[i] += y[list(gs)].sum(axis=0) / np.sqrt(len(gs))
    return q


def naive_fold_in(movies, ratings, mu, movie_bias, effective_movie_factors, reg, reg_bias, weighted, reg_exponent,
                  prior=None):
    """A new user's (bias, factors): the ridge regression of r_j - mu - b_j on [1, e_j] over their movies,
    with penalty diag(reg_bias, lam, ..., lam), lam = reg * n ** reg_exponent (weighted) or reg, by a
    dense solve of the normal equations in float64. ``prior`` = (m, P): the Gaussian prior's precision P
    is added to the normal matrix and P m to the right-hand side."""
    import numpy as np

    E = np.asarray(effective_movie_factors, np.float64)[np.asarray(movies)]
    X = np.hstack([np.ones((len(movies), 1)), E])
    t = np.asarray(ratings, np.float64) - mu - np.asarray(movie_bias, np.float64)[np.asarray(movies)]
    lam = reg * len(movies) ** reg_exponent if weighted else reg
    A, b = X.T @ X + np.diag([reg_bias] + [lam] * E.shape[1]), X.T @ t
    if prior is not None:
        A, b = A + np.asarray(prior[1], np.float64), b + np.asarray(prior[1], np.float64) @ np.asarray(prior[0], np.float64)
    z = np.linalg.solve(A, b)
    return float(z[0]), z[1:]


def naive_population_prior(user_rows, effective_movie_factors, user_bias, user_factors, reg, reg_bias, weighted,
                           reg_exponent, noise_variance):
    """(m, P) of the fold-in prior from every training user: m the mean [b_u, p_u]; P = sigma^2 S^-1 with
    S = (population covariance of [b_u, p_u]) + sigma^2 * mean over users of (X_u^T X_u + D_n)^-1,
    ``user_rows`` the list of each user's rated movie indices."""
    import numpy as np

    Z = np.column_stack([np.asarray(user_bias, np.float64), np.asarray(user_factors, np.float64)])
    d = Z.shape[1]
    m = Z.mean(axis=0)
    S = (Z - m).T @ (Z - m) / len(Z)
    post = np.zeros((d, d))
    for movies in user_rows:
        X = np.hstack([np.ones((len(movies), 1)), np.asarray(effective_movie_factors, np.float64)[np.asarray(movies)]])
        lam = reg * len(movies) ** reg_exponent if weighted else reg
        post += np.linalg.inv(X.T @ X + np.diag([reg_bias] + [lam] * (d - 1)))
    S = S + noise_variance * post / len(user_rows)
    return m, noise_variance * np.linalg.inv(S)


def naive_predict(users, movies, mu, user_bias, movie_bias, P, Qeff, scale=None):
    """mu + b_u + b_i + p_u . q_i per pair, clipped to scale when given."""
    import numpy as np

    p = mu + np.asarray(user_bias, np.float64)[users] + np.asarray(movie_bias, np.float64)[movies]
    p = p + np.einsum("ij,ij->i", np.asarray(P, np.float64)[users], np.asarray(Qeff, np.float64)[movies])
    return np.clip(p, *scale) if scale is not None else p


# -- data pipeline: references for mfrec.kernels.parse and mfrec.kernels.sort ----------
def naive_parse_ratings(text, sep):
    """(user, movie, rating, timestamp) lists from lines of four numbers split by ``sep``."""
    rows = [line.rstrip("\r").split(sep) for line in text.rstrip("\r\n").split("\n")]
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows], [float(r[2]) for r in rows], [int(r[3]) for r in rows]


def naive_parse_line(line, sep):
    """One line of four numbers split by ``sep``: (user, movie, rating, timestamp), or the name of the
    first field whose value its stored type cannot hold ("user", "movie", "rating" or "timestamp").

    Ids are int32 and non-negative, timestamps int64 (either sign); a rating's whole part must fit int64.
    """
    u, m, r, t = line.rstrip("\r").split(sep)
    u, m, t = int(u), int(m), int(t)
    if not 0 <= u <= 2**31 - 1:
        return "user"
    if not 0 <= m <= 2**31 - 1:
        return "movie"
    if int(r.split(".")[0]) > 2**63 - 1:
        return "rating"
    if abs(t) > 2**63 - 1:
        return "timestamp"
    return u, m, float(r), t


def naive_content_end(data, start, end):
    """The index just after the last byte of ``data[start:end]`` that is not ASCII whitespace (``start`` if none)."""
    return start + len(bytes(data[start:end]).rstrip())


def naive_group_dedupe(user, movie, timestamp):
    """Order by (user, timestamp, movie, file position) keeping only the last rating of each (user, movie)."""
    n = len(user)
    order = sorted(range(n), key=lambda i: (user[i], timestamp[i], movie[i], i))
    latest = {}
    for pos, i in enumerate(order):
        latest[(user[i], movie[i])] = pos
    kept = [i for pos, i in enumerate(order) if latest[(user[i], movie[i])] == pos]
    return kept, n - len(kept)


def naive_counting_sort(keys, n_keys):
    import numpy as np

    keys = np.asarray(keys)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))])
    return indptr, np.array(sorted(range(len(keys)), key=lambda i: (keys[i], i)), dtype=np.int64)


def naive_min_counts(pairs, min_user, min_movie):
    """Drop (user, movie) pairs of users/movies with too few ratings until nothing changes."""
    from collections import Counter

    pairs = list(pairs)
    while True:
        mc = Counter(m for _, m in pairs)
        kept = [(u, m) for u, m in pairs if mc[m] >= min_movie]
        uc = Counter(u for u, _ in kept)
        kept = [(u, m) for u, m in kept if uc[u] >= min_user]
        if len(kept) == len(pairs):
            return kept
        pairs = kept


# -- CSR: references for mfrec.kernels.csr --------------------------------------------------
def naive_csr_from_pairs(rows, cols, n_rows):
    """(indptr, indices) built row by row from Python lists: each row's columns in their given order."""
    per_row = [[] for _ in range(n_rows)]
    for r, c in zip(rows, cols):
        per_row[int(r)].append(int(c))
    return naive_csr_of_lists(per_row)


def naive_csr_rows(indptr, indices, rows):
    """(indptr, indices) of the CSR made of rows ``rows`` of (indptr, indices), one list per row."""
    return naive_csr_of_lists([list(indices[indptr[r]:indptr[r + 1]]) for r in rows])


def naive_csr_of_lists(lists):
    """(indptr int64, indices int32) of a CSR whose row i holds the entries of lists[i]."""
    import numpy as np

    indptr = np.array([0] + [sum(len(x) for x in lists[: i + 1]) for i in range(len(lists))], np.int64)
    return indptr, np.array([c for x in lists for c in x], dtype=np.int32)


# -- Gibbs sampler: references for mfrec.kernels.gibbs ------------------------------------------
def naive_gibbs_row(indptr, indices, values, fixed, fixed_bias, mu, alpha, prec, mean, eps, r, row_shift=None):
    """Row r's Gaussian conditional for z = [bias, factors]: (precision, mean, the draw mean + R^-1 eps)
    with precision = alpha X^T X + diag(prec) = R^T R, straight from the definitions (dense NumPy)."""
    import numpy as np

    fixed = np.asarray(fixed, np.float64)
    k = fixed.shape[1]
    cols = np.asarray(indices[indptr[r]:indptr[r + 1]])
    t = np.asarray(values[indptr[r]:indptr[r + 1]], np.float64) - mu - np.asarray(fixed_bias, np.float64)[cols]
    if row_shift is not None:
        t = t - fixed[cols] @ np.asarray(row_shift, np.float64)[r]
    X = np.hstack([np.ones((len(cols), 1)), fixed[cols]]).reshape(len(cols), k + 1)
    A = alpha * X.T @ X + np.diag(prec)
    m = np.linalg.solve(A, alpha * X.T @ t + np.asarray(prec) * np.asarray(mean))
    R = np.linalg.cholesky(A).T  # upper: A = R^T R
    return A, m, m + np.linalg.solve(R, np.asarray(eps, np.float64))


def naive_gram_resid(indptr, indices, values, fixed, fixed_bias, mu, bias, factors, r, row_shift=None):
    """Row r's sum y y^T and sum e y, e = the residual of the row's ratings after (bias, factors)."""
    import numpy as np

    fixed = np.asarray(fixed, np.float64)
    cols = np.asarray(indices[indptr[r]:indptr[r + 1]])
    t = np.asarray(values[indptr[r]:indptr[r + 1]], np.float64) - mu - np.asarray(fixed_bias, np.float64)[cols]
    if row_shift is not None:
        t = t - fixed[cols] @ np.asarray(row_shift, np.float64)[r]
    Y = fixed[cols]
    e = t - bias[r] - Y @ np.asarray(factors, np.float64)[r]
    return Y.T @ Y, Y.T @ e


def naive_implicit_draws(owner_indptr, owner_rows, coef, gram, resid, Z, alpha, prec, mean, eps_of):
    """The coordinate-wise implicit-factor draws by dense NumPy: for each dimension f, for each j in
    turn, the scalar conditional of z_jf (precision alpha sum_u c_u^2 G_u[f, f] + prec_f, rhs
    alpha sum_u c_u (h_uf + c_u G_u[f, f] z_jf) + prec_f mean_f), the draw mean + eps_of(j)[f] /
    sqrt(precision) stored as float32, then every owner's whole h_u -= c_u G_u[:, f] (z_new - z_old).
    Returns (Z, resid) as new arrays."""
    import numpy as np

    Z = np.array(Z, np.float64)
    h = np.array(resid, np.float64)
    G = np.asarray(gram, np.float64)
    k = Z.shape[1]
    for f in range(k):
        for j in range(len(Z)):
            us = owner_rows[owner_indptr[j]:owner_indptr[j + 1]]
            p = prec[f] + alpha * sum(coef[u] ** 2 * G[u, f, f] for u in us)
            rhs = prec[f] * mean[f] + alpha * sum(coef[u] * (h[u, f] + coef[u] * G[u, f, f] * Z[j, f]) for u in us)
            new = float(np.float32(rhs / p + eps_of(j)[f] / np.sqrt(p)))
            for u in us:
                h[u] -= coef[u] * G[u, :, f] * (new - Z[j, f])
            Z[j, f] = new
    return Z, h


def naive_time_bias_draw(user, movie, rating, ud, ib, b_ud, b_ib, mu, bu, bi, P, Q, alpha, ud_prior, ib_prior,
                         ud_eps, ib_eps):
    """The time-bias groups' draw by whole-array NumPy, every array in the ratings' order: the
    (user, day) groups given the (movie, bin) biases, b_g = (alpha s_g + lam m) / p_g + eps_g / sqrt(p_g)
    with p_g = alpha n_g + lam and s_g the group's sum of rating - prediction - the other bias; then
    the (movie, bin) groups given the new day biases. Returns (b_ud, b_ib, the ratings less both
    biases as float32, the SSE of the full prediction)."""
    import numpy as np

    pred = mu + bu[user].astype(np.float64) + bi[movie] + np.einsum("nk,nk->n", P[user].astype(np.float64), Q[movie])
    resid = np.asarray(rating, np.float64) - pred
    b_ud, b_ib = np.array(b_ud, np.float64), np.array(b_ib, np.float64)
    for idx, other, (m, lam), eps, out in ((ud, lambda: b_ib[ib], ud_prior, ud_eps, b_ud),
                                           (ib, lambda: b_ud[ud], ib_prior, ib_eps, b_ib)):
        p = alpha * np.bincount(idx, minlength=len(out)) + lam
        s = np.bincount(idx, resid - other(), minlength=len(out))
        out[:] = (alpha * s + lam * m) / p + eps / np.sqrt(p)
    off = b_ud[ud] + b_ib[ib]
    return b_ud, b_ib, (np.asarray(rating, np.float64) - off).astype(np.float32), float(np.sum((resid - off) ** 2))


def naive_ease(X, reg):
    """EASE (Steck 2019) from the paper's formula, in float64: P = (X^T X + reg I)^-1,
    B = I - P diagMat(1 / diag(P)), so B[j, i] = -P[j, i] / P[i, i] off the diagonal and 0 on it."""
    import numpy as np

    X = np.asarray(X, np.float64)
    P = np.linalg.inv(X.T @ X + reg * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


# -- implicit ALS: reference for mfrec.kernels.ials ------------------------------------------------
def naive_implicit_rows(indptr, indices, conf, fixed, reg, alpha0, nu):
    """Each row's implicit-ALS factors from the dense weighted ridge problem over *every* column:
    weight c_j and target 1 on the row's positives, weight alpha0 and target 0 elsewhere, penalty
    reg * (n_positives + alpha0 * n_cols) ** nu; an empty row gets zeros."""
    import numpy as np

    Y = np.asarray(fixed, np.float64)
    n_cols, k = Y.shape
    out = np.zeros((len(indptr) - 1, k))
    for r in range(len(indptr) - 1):
        cols = np.asarray(indices[indptr[r]:indptr[r + 1]])
        if len(cols) == 0:
            continue
        w = np.full(n_cols, alpha0, np.float64)
        w[cols] = np.asarray(conf[indptr[r]:indptr[r + 1]], np.float64)
        target = np.zeros(n_cols)
        target[cols] = 1.0
        lam = reg * (len(cols) + alpha0 * n_cols) ** nu
        out[r] = np.linalg.solve((Y.T * w) @ Y + lam * np.eye(k), (Y.T * w) @ target)
    return out
