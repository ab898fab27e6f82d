"""The ALS model configuration: one typed dataclass, validated in ``fit``, saved to config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mfrec.errors import ModelError

MODELS = ("bias", "mf", "mf-genre", "ials")
SOLVERS = ("cholesky", "cg")

# Per-model defaults, tuned on ml-100k u1 (see README "Training"): weighted-lambda ALS with the
# penalty growing as count ** 0.75, a small unweighted bias penalty, k = 64, 8 epochs, the CG
# solver (as accurate as Cholesky there, and 20x faster at k = 64).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "bias": {"factors": 0, "epochs": 8, "reg_bias": 2.0, "solver": "cholesky"},
    "mf": {"factors": 64, "epochs": 8, "reg": 0.4, "reg_exponent": 0.75, "reg_bias": 1.0, "solver": "cg"},
    "mf-genre": {"factors": 64, "epochs": 8, "reg": 0.4, "reg_exponent": 0.75, "reg_bias": 1.0, "reg_genre": 0.3,
                 "solver": "cg"},
    # implicit ALS: tuned on ml-100k user-last validation (README "ials"); Rendle et al. 2021's
    # frequency-scaled penalty reg * (n + unobserved_weight * n_cols) ** reg_exponent
    "ials": {"factors": 128, "epochs": 16, "reg": 0.01, "reg_exponent": 1.0, "alpha": 8.0, "rating_power": 1.0,
             "unobserved_weight": 1.0, "recency": 16.0, "recency_scale": 0.1, "solver": "cg", "cg_steps": 3,
             "patience": 3},
}


@dataclass(frozen=True)
class ALSConfig:
    """Hyperparameters of an ALS model (``bias``, ``mf``, ``mf-genre`` or the implicit-feedback ``ials``)."""

    model: str = field(
        default="mf",
        metadata={"doc": "Which model: bias (mu + b_u + b_i), mf (+ p_u.q_i), mf-genre (+ genre factors) or ials (implicit feedback, p_u.q_i ranks)."},
    )
    factors: int = field(
        default=64,
        metadata={"doc": "Latent dimension k (forced to 0 for the bias model)."},
    )
    epochs: int = field(
        default=8,
        metadata={"doc": "Maximum number of ALS epochs (one epoch = user half-step + movie half-step [+ genre solve])."},
    )
    reg: float = field(
        default=0.4,
        metadata={"doc": "L2 penalty on user/movie factors (times the row's rating count when weighted_reg; ials: times (count + unobserved_weight * n_cols) ** reg_exponent)."},
    )
    reg_bias: float = field(
        default=1.0,
        metadata={"doc": "L2 penalty on user/movie biases (never scaled by the count, so rare rows shrink more)."},
    )
    reg_genre: float = field(
        default=0.3,
        metadata={"doc": "L2 penalty on genre factors (times the genre's rating count when weighted_reg)."},
    )
    weighted_reg: bool = field(
        default=True,
        metadata={"doc": "Weighted-lambda: scale reg by each row's rating count ** reg_exponent (ALS-WR)."},
    )
    reg_exponent: float = field(
        default=0.75,
        metadata={"doc": "Exponent of the rating count in weighted-lambda (1 = classic ALS-WR, 0 = unweighted)."},
    )
    solver: str = field(
        default="cg",
        metadata={"doc": "Per-row solver: cholesky (exact) or cg (warm-started conjugate gradient, fast for large k)."},
    )
    cg_steps: int = field(
        default=3,
        metadata={"doc": "Conjugate-gradient iterations per row and half-step (solver cg)."},
    )
    alpha: float = field(
        default=8.0,
        metadata={"doc": "ials: a rated movie's confidence is 1 + alpha * (rating / top rating) ** rating_power."},
    )
    rating_power: float = field(
        default=1.0,
        metadata={"doc": "ials: how steeply confidence grows with the rating (0 = every rating the same)."},
    )
    unobserved_weight: float = field(
        default=1.0,
        metadata={"doc": "ials: weight of every unrated movie, a zero (alpha0 of Rendle et al. 2021)."},
    )
    recency: float = field(
        default=16.0,
        metadata={"doc": "ials: how much more a user's latest ratings count: the confidence's rating part is "
                         "times (1 + recency * exp(-(1 - t) / recency_scale)) / (1 + recency), t = place in time (1 = latest)."},
    )
    recency_scale: float = field(
        default=0.1,
        metadata={"doc": "ials: how far back (as a share of the user's history) the recency boost reaches."},
    )
    refit_with_val: bool = field(
        default=True,
        metadata={"doc": "ials: after validation picks the epoch count, train again on train + validation for that many epochs."},
    )
    init_std: float = field(
        default=0.1,
        metadata={"doc": "Standard deviation of the random initial factors (ials: divided by sqrt(k))."},
    )
    seed: int = field(
        default=42,
        metadata={"doc": "Seed of the initial factors; the same seed gives the same model."},
    )
    threads: int = field(
        default=0,
        metadata={"doc": "Numba threads (0 = Numba's default, all cores)."},
    )
    patience: int = field(
        default=2,
        metadata={"doc": "Early stopping: stop after this many epochs without a better validation RMSE (ials: NDCG@10) (0 = never)."},
    )
    train_metrics: bool | None = field(
        default=None,
        metadata={"doc": "Per-epoch training RMSE (ials: training loss), one extra pass over the ratings: "
                         "true, false, or null = only when there is no validation split (the test split is never "
                         "evaluated per epoch; its RMSE is taken once, from the kept model)."},
    )

    @classmethod
    def for_model(cls, model: str, **overrides: Any) -> "ALSConfig":
        """The defaults of ``model`` with ``overrides`` (None values are ignored)."""
        if model not in MODEL_DEFAULTS:
            raise ModelError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
        values = {**MODEL_DEFAULTS[model], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(model=model, **values)

    def validate(self) -> "ALSConfig":
        """Raise ModelError naming the first bad field; return self."""
        def bad(name: str, must: str) -> ModelError:
            return ModelError(f"config field {name} {must}, got {getattr(self, name)!r}")

        if self.model not in MODELS:
            raise bad("model", f"must be one of {', '.join(MODELS)}")
        if not isinstance(self.factors, int) or self.factors < 0:
            raise bad("factors", "must be a non-negative integer")
        if self.model != "bias" and self.factors < 1:
            raise bad("factors", f"must be at least 1 for the {self.model} model")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise bad("epochs", "must be an integer >= 1")
        for name in ("reg", "reg_genre", "init_std", "alpha", "unobserved_weight"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (v > 0) or v != v or v == float("inf"):
                raise bad(name, "must be a positive finite number")
        if not isinstance(self.reg_bias, (int, float)) or not (0 <= self.reg_bias < float("inf")):
            raise bad("reg_bias", "must be a finite number >= 0")
        if not isinstance(self.reg_exponent, (int, float)) or not (0 <= self.reg_exponent <= 2):
            raise bad("reg_exponent", "must be a number in 0..2")
        if not isinstance(self.recency, (int, float)) or not (0 <= self.recency < 1e6):
            raise bad("recency", "must be a number >= 0")
        if not isinstance(self.recency_scale, (int, float)) or not (0 < self.recency_scale <= 10):
            raise bad("recency_scale", "must be a number in (0, 10]")
        if not isinstance(self.rating_power, (int, float)) or not (0 <= self.rating_power <= 8):
            raise bad("rating_power", "must be a number in 0..8")
        if self.solver not in SOLVERS:
            raise bad("solver", f"must be one of {', '.join(SOLVERS)}")
        if not isinstance(self.cg_steps, int) or self.cg_steps < 1:
            raise bad("cg_steps", "must be an integer >= 1")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise bad("threads", "must be an integer >= 0")
        if not isinstance(self.patience, int) or self.patience < 0:
            raise bad("patience", "must be an integer >= 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "must be a non-negative integer")
        if not isinstance(self.refit_with_val, bool):
            raise bad("refit_with_val", "must be true or false")
        if not isinstance(self.weighted_reg, bool):
            raise bad("weighted_reg", "must be true or false")
        if self.train_metrics is not None and not isinstance(self.train_metrics, bool):
            raise bad("train_metrics", "must be true, false or null")
        return self

    @property
    def k(self) -> int:
        """The latent dimension actually used (0 for bias)."""
        return 0 if self.model == "bias" else self.factors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ALSConfig":
        """Fields of ``d`` that name config fields (other keys, e.g. dataset, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> "ALSConfig":
        return replace(self, **changes)


def field_docs() -> dict[str, str]:
    """One line of documentation per config field (for --help and the README), in field order."""
    return {f.name: f.metadata["doc"] for f in fields(ALSConfig)}
