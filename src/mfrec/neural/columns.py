"""metrics.csv columns each neural model adds (torch-free, so the CLI can create the run folder first)."""

EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "neumf": ("train_loss", "val_loss"),
    "genre-embedding": ("stage", "train_loss", "val_loss"),
    "sequential": ("train_loss", "val_loss", "val_hit@10", "val_ndcg@10"),
    "attention": ("train_loss", "val_loss"),
}
