"""Slow, obviously-correct NumPy references that the Numba kernels are checked against."""


# -- ranking metrics (engineer D): obviously-correct references for mfrec.evaluation.ranking --------
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


# -- inference (engineer E): references for mfrec.inference.topk and the explanation decomposition --
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


def naive_explain(item_factors, movie_bias, mu, rated, ratings, targets, reg, reg_bias, weighted):
    """Per-rating contributions c[t, j] = t_j [1, y_t]^T A^-1 [1, y_j] straight from the normal
    equations A = sum_j [1, y_j][1, y_j]^T + diag(reg_bias, lam, ..., lam), t_j = r_j - mu - b_j,
    lam = reg * n (weighted) or reg; also the folded-in [b_u, p_u] = A^-1 sum_j t_j [1, y_j]."""
    import numpy as np

    Y = np.asarray(item_factors, np.float64)
    rated = np.asarray(rated)
    Z = np.concatenate([np.ones((len(rated), 1)), Y[rated]], axis=1)
    t = np.asarray(ratings, np.float64) - mu - np.asarray(movie_bias, np.float64)[rated]
    lam = reg * len(rated) if weighted else reg
    A = Z.T @ Z + np.diag([reg_bias] + [lam] * Y.shape[1])
    Ainv = np.linalg.inv(A)
    T = np.concatenate([np.ones((len(targets), 1)), Y[np.asarray(targets)]], axis=1)
    contrib = (T @ Ainv @ Z.T) * t[None, :]
    return contrib, Ainv @ (Z.T @ t)
