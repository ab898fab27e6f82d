"""Pure Numba kernels: arrays in, arrays out, no Python objects and no I/O.

- ``als.solve_rows``: the one ALS half-step (users, movies, or a new user's fold-in).
- ``als.solve_genre_factors``: the joint least-squares solve for the genre factors.
- ``predict.predict`` / ``predict.error_sums``: predictions and fused RMSE/MAE sums.
"""
