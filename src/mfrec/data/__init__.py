"""Datasets: MovieLens readers, the synthetic generator, splits and the Training_data store."""

from mfrec.data.store import CSR, Dataset, IdMap, Split, load, resolve

__all__ = ["CSR", "Dataset", "IdMap", "Split", "load", "resolve"]
