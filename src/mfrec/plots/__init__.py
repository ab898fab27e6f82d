"""matplotlib figures written to PNG files (Agg backend); one shared look from ``style``.

- ``dataset``: figures of a prepared dataset (``mfrec analyze``).
- ``curves``: RMSE curves of a run (``rmse.png``, written by training).
- ``run``: biases, movie-factor map and genre factors of a run (``mfrec plot``).
- ``compare``: several runs' curves overlaid (``mfrec compare``).
"""
