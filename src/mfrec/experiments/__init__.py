"""Experiment folders: ``Experiments_/<run>/`` written by every training run and loaded back.

A run folder holds::

    config.json    model, dataset, data_path, dataset_fingerprint (the dataset version trained
                   on: SHA-256 of its manifest's file checksums), every hyperparameter, seed
    metrics.csv    epoch,train_rmse,val_rmse,test_rmse,seconds (+ extra columns a model adds);
                   an empty cell where a value was not computed
    train.log      time-stamped log lines; a failed run ends with the error
    summary.json   status ("ok"/"failed"), dataset, model, config, epochs_run, best_epoch, RMSEs,
                   test_mae, train_seconds, seconds_per_epoch, peak_rss_mb, versions, finished
    model.npz      ALS factors (see mfrec.models.als); neural runs write their own weights file;
                   EASE runs write ease.npz (see mfrec.models.ease)
    plots/*.png    rmse.png at least

``Run`` writes a folder (``mfrec.training`` drives it for every model kind); ``Experiment`` reads one
back. This package is folder I/O only: ``mfrec.load_experiment`` (in ``mfrec.inference.api``)
returns an ``Experiment`` with the recommendation methods added.
"""

from mfrec.experiments.run import (
    FINGERPRINT,
    METRICS_COLUMNS,
    Experiment,
    Run,
    dataset_fingerprint,
    find_run,
    read_config,
    read_json,
    package_versions,
    peak_rss_mb,
    read_metrics,
)
from mfrec.experiments.summary import Summary

__all__ = [
    "FINGERPRINT",
    "METRICS_COLUMNS",
    "Experiment",
    "Run",
    "Summary",
    "dataset_fingerprint",
    "find_run",
    "read_config",
    "read_json",
    "read_metrics",
    "package_versions",
    "peak_rss_mb",
]
