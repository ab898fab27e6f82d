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
