"""Pure Numba kernels: arrays in, arrays out, no Python objects and no I/O.

- ``als.solve_rows``: the one ALS half-step (users, movies, or a new user's fold-in).
- ``als.genre_normal_equations``: per-genre-set sums for the joint genre-factor solve.
- ``predict.predict`` / ``predict.error_sums``: predictions and fused RMSE/MAE sums.
"""
