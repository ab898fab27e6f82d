"""Numbers behind the pictures: pure functions from datasets and runs to arrays and Polars frames.

- ``mfrec.analysis.dataset``: counts, quantiles, genre/time/demographic breakdowns of a dataset.
- ``mfrec.analysis.runs``: a training run's arrays, 2-D maps of factors, and run comparison tables.

Nothing here plots or prints; ``mfrec.plots`` draws these numbers and ``mfrec.cli`` prints them.
"""
