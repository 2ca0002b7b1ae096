"""What defines a training run: `TrainConfig`, the presets and the CVR loss names.

TensorFlow-free, so the command line can offer these as choices without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.artifacts.errors import ConfigError

# masked: BCE(conversion, b) over clicked rows (the article; selection-biased);
# esmm: BCE(conversion, pCTR * pCVR) over all rows (pCTCVR, Ma et al. 2018).
# Each name has its function in losses.CVR_LOSS.
CVR_LOSSES = ("masked", "esmm")
EMBEDDING_OPTIMIZERS = ("adam", "adagrad")


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in the manifest."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 42
    test_size: float = 0.2
    hidden: tuple[int, ...] = (64, 32)
    output_activation: str = "relu"
    l2_normalize: bool = False
    head_inputs: str = "dot"
    head_hidden: tuple[int, ...] = ()
    cvr_loss: str = "masked"
    # Weight of the in-batch softmax over clicked pairs (model/training/losses.py); 0 turns it off.
    retrieval_weight: float = 0.0
    temperature: float = 0.05
    # Optimizer of the embedding tables (sparse updates either way): "adam" at learning_rate,
    # or "adagrad" at embedding_learning_rate, whose steps shrink for often-seen rows
    # (model/training/optim.py). Dense weights always use Adam.
    embedding_optimizer: str = "adam"
    embedding_learning_rate: float = 0.2
    # Early stopping: this share of the training rows is held back; training stops when
    # their log loss (click + conversion) has not improved for `patience` epochs, and the
    # best epoch's weights are kept. 0 trains every epoch on every training row.
    validation_fraction: float = 0.0
    patience: int = 2

    def __post_init__(self):
        self.hidden, self.head_hidden = tuple(self.hidden), tuple(self.head_hidden)
        if self.cvr_loss not in CVR_LOSSES:
            raise ConfigError(f"cvr_loss must be one of {CVR_LOSSES}")
        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.test_size < 1 or self.learning_rate <= 0:
            raise ConfigError("epochs and batch size must be >= 1, test size in (0, 1), learning rate > 0")
        if self.retrieval_weight < 0 or self.temperature <= 0:
            raise ConfigError("retrieval weight must be >= 0, temperature > 0")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS or self.embedding_learning_rate <= 0:
            raise ConfigError("embedding optimizer must be adam or adagrad, with a learning rate > 0")
        if not 0 <= self.validation_fraction < 1 or self.patience < 1:
            raise ConfigError("validation fraction must be in [0, 1) and patience >= 1")


# `article` is the blog article's model, kept reproducible on the seed data. `default` adds
# what makes it learn to retrieve and rank: unit-norm embeddings with an in-batch softmax
# over clicks, heads that see u·v, u⊙v, u and v through a hidden layer, Adagrad for the
# embedding tables, and early stopping on held-back training rows. Its CVR loss is the
# masked one: on both benchmark data sets it beat ESMM on CVR AUC (docs/QUALITY.md
# measures both; `--cvr-loss esmm` switches).
# Softmax weight 0.6 at temperature 0.2 (rather than 0.3 at 0.1): a softer softmax weighted
# higher ranked better against the simulator's truth on three unseen data sets (live NDCG@50
# with 100 candidates: 1.68/1.88/2.09x -> 1.72/2.01/2.22x popularity) and on MovieLens (HR@50 0.193 -> 0.198).
PRESETS = {
    "article": {},
    "default": dict(epochs=20, batch_size=512, output_activation="linear", l2_normalize=True,
                    head_inputs="full", head_hidden=(32,), cvr_loss="masked", retrieval_weight=0.6,
                    temperature=0.2, validation_fraction=0.1, patience=2, embedding_optimizer="adagrad",
                    embedding_learning_rate=0.2),
}


def make_config(preset: str = "default", **overrides) -> TrainConfig:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    return TrainConfig(**{**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})
