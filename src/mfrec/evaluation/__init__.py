"""Evaluation: rating metrics (RMSE/MAE), full-ranking metrics and the protocols that apply them."""
