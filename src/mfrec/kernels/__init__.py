"""Pure Numba kernels: arrays in, arrays out, no Python objects and no I/O.

- ``als.solve_rows``: the one ALS half-step (users, movies, or a new user's fold-in).
- ``exact``: the exact row solve (gather, tiled Gram, Cholesky, substitutions) under the ALS
  Cholesky half-step, the ials Cholesky half-step and the Gibbs draw.
- ``genre.genre_index`` / ``genre.solve_genre_factors``: the (user, genre set) pairs of a fit and
  the joint least-squares solve for the genre factors (warm-started conjugate gradient).
- ``predict.predict`` / ``predict.error_sums``: predictions and fused RMSE/MAE sums.
- ``topk.topk_rows`` / ``topk.score_one``: the one top-k selection (ties to the lower index) and
  one user's scores on the calling thread.
- ``ranking.user_metrics``: per-user hit, NDCG, recall and genre Jaccard of top-k lists.
- ``parse.parse_ratings`` / ``parse.content_end`` / ``parse.first_bad_rating``: the parallel
  ratings-file parser, where trailing whitespace starts, the first rating off a scale.
- ``sort.group_by_user`` / ``sort.counting_sort`` / ``sort.gather`` / ``sort.partition``: grouping
  ratings by user in time order without duplicates, and splitting them.
- ``csr``: CSR from pairs, a CSR's rows, its transpose (the one copy of each, NumPy or Numba).
- ``synthetic.generate_ratings``: the seeded, thread-independent synthetic ratings generator.

Each public function validates its arguments and raises a clear error; the ``_kernel`` it calls
is pure ``@njit`` (``cache=True``; floating-point flags only from ``_config.FASTMATH``).
"""
