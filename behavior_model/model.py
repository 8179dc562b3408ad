"""The behaviour model: a pure nn.Module, no I/O.

Each event becomes one input vector, the sum of embeddings of its type, item (top-K id or hashed
bucket), category, time since the previous event, age before the cutoff, hour and weekday, a
projection of price and quantity, and a projection of its item text's sentence embedding. A small
causal transformer built from a Hugging Face ``LlamaConfig`` (from scratch, SDPA attention) reads
the sequence; the last real position feeds two heads (churn, purchase) and, in pre-training, every
position predicts the next event's type, category and item.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaModel

from behavior_model.config import LABELS, ModelConfig
from pipeline.contracts import EVENT_TYPES


class RFMContext:
    """The RFM / activity context every family's heads read beside its sequence vector:
    standardised with statistics stored as buffers (set by the fit from training data), then an
    MLP to the hidden width. ``context_mlp`` is None when the config reads no context."""

    def init_context(self, cfg: ModelConfig, hidden: int) -> None:
        if cfg.use_context and cfg.context_dim:
            self.register_buffer("context_mean", torch.zeros(cfg.context_dim))
            self.register_buffer("context_std", torch.ones(cfg.context_dim))
            self.context_mlp = nn.Sequential(
                nn.Linear(cfg.context_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden)
            )
        else:
            self.context_mlp = None

    def standardised_context(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if self.context_mlp is None:
            return None
        return (batch["context"] - self.context_mean) / self.context_std  # (B, F)

    def context_vector(self, context: torch.Tensor | None) -> torch.Tensor | int:
        """What the (standardised) RFM context adds to the user vector; 0 without context."""
        if self.context_mlp is None or context is None:
            return 0
        return self.context_mlp(context)


class BehaviorModel(RFMContext, nn.Module):
    def __init__(self, cfg: ModelConfig, *, n_item_tokens: int, n_categories: int) -> None:
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden_size
        n_types = len(EVENT_TYPES) + 1
        self.type_emb = nn.Embedding(n_types, H, padding_idx=0)
        self.item_emb = nn.Embedding(n_item_tokens, H, padding_idx=0)
        self.category_emb = nn.Embedding(n_categories, H, padding_idx=0)
        self.gap_emb = nn.Embedding(cfg.time_buckets, H)
        self.age_emb = nn.Embedding(cfg.time_buckets, H)
        self.hour_emb = nn.Embedding(24, H)
        self.weekday_emb = nn.Embedding(7, H)
        self.numeric_proj = nn.Linear(cfg.n_numeric, H)
        self.text_proj = nn.Linear(cfg.text_dim, H) if cfg.use_text else None
        self.input_norm = nn.LayerNorm(H)
        self.dropout = nn.Dropout(cfg.dropout)
        self.backbone = LlamaModel(
            LlamaConfig(
                vocab_size=1,  # inputs_embeds only; the token table is unused
                hidden_size=H,
                num_hidden_layers=cfg.num_layers,
                num_attention_heads=cfg.num_heads,
                num_key_value_heads=cfg.num_heads,
                intermediate_size=cfg.intermediate_size,
                max_position_embeddings=cfg.max_events,
                attention_dropout=cfg.dropout,
                attn_implementation="sdpa",
                bos_token_id=None,
                eos_token_id=None,
                pad_token_id=None,
            )
        )
        self.init_context(cfg, H)
        self.heads = nn.Linear(H, len(LABELS))
        self.next_type_head = nn.Linear(H, n_types)
        self.next_category_head = nn.Linear(H, n_categories)
        self.next_item_head = nn.Linear(H, n_item_tokens)
        # Contrastive pre-training's projection (TrainConfig.contrastive_weight).
        self.contrastive_head = nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.Linear(H, H))

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = (
            self.type_emb(batch["event_type"])
            + self.gap_emb(batch["gap"])
            + self.age_emb(batch["age"])
            + self.hour_emb(batch["hour"])
            + self.weekday_emb(batch["weekday"])
            + self.numeric_proj(batch["numeric"])
        )  # (B, T, H)
        if "member_slot" in batch:  # basket tokens: the mean of their events' embeddings
            B, T, H = x.shape
            members = (
                self.item_emb(batch["member_item"]) + self.category_emb(batch["member_category"])
            ) * batch["member_weight"].unsqueeze(1)
            x = x + x.new_zeros(B * T, H).index_add_(0, batch["member_slot"], members).view(B, T, H)
        else:
            x = x + self.item_emb(batch["item"]) + self.category_emb(batch["category"])
        if self.text_proj is not None:
            x = x + self.text_proj(batch["text_vectors"])
        return self.dropout(self.input_norm(x))

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.backbone(inputs_embeds=self.embed(batch), attention_mask=batch["attention_mask"])
        return out.last_hidden_state  # (B, T, H)

    def sequence_vector(
        self, batch: dict[str, torch.Tensor], *, inputs_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, H): the backbone's hidden state at the last event left in the attention mask.

        With right padding that is position lengths - 1; with events masked out (explain.py asks
        "what if they had not happened") the last one kept; with every event masked, zeros.
        """
        x = self.embed(batch) if inputs_embeds is None else inputs_embeds
        mask = batch["attention_mask"]
        hidden = self.backbone(inputs_embeds=x, attention_mask=mask).last_hidden_state
        positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
        last_pos = torch.where(mask.bool(), positions, -1).max(dim=1).values
        last = hidden[torch.arange(hidden.size(0), device=hidden.device), last_pos.clamp(min=0)]
        return torch.where((last_pos >= 0).unsqueeze(1), last, torch.zeros_like(last))

    def user_vector(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, H): sequence vector plus RFM context, what the churn and purchase heads read."""
        seq = self.sequence_vector(batch)
        return seq + self.context_vector(self.standardised_context(batch))

    def forward(
        self, batch: dict[str, torch.Tensor], targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, 2) for (churn, purchase); BCE loss when targets (B, 2) are given."""
        logits = self.heads(self.user_vector(batch)).float()  # (B, 2)
        loss = None if targets is None else F.binary_cross_entropy_with_logits(logits, targets)
        return logits, loss

    def pretrain_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Next-event prediction: position t predicts type, category and item of event t + 1.

        The item term matters where types and categories carry little (Online Retail: every event
        is a purchase and there are no categories).
        """
        encoded = self.encode(batch)  # (B, T, H)
        hidden = encoded[:, :-1]
        valid = batch["attention_mask"][:, 1:].bool()
        h = hidden[valid]
        type_loss = F.cross_entropy(
            self.next_type_head(h).float(), batch["event_type"][:, 1:][valid]
        )
        if "member_slot" in batch:
            # Basket t predicts every item and category of basket t + 1 (a bag of targets).
            T = encoded.shape[1]
            slot = batch["member_slot"]
            later = slot % T > 0
            h = encoded.reshape(-1, encoded.shape[-1])[slot[later] - 1]
            next_category, next_item = batch["member_category"][later], batch["member_item"][later]
        else:
            next_category, next_item = batch["category"][:, 1:][valid], batch["item"][:, 1:][valid]
        cat_loss = F.cross_entropy(self.next_category_head(h).float(), next_category)
        item_loss = F.cross_entropy(self.next_item_head(h).float(), next_item)
        return type_loss + cat_loss + item_loss

    def contrastive_loss(
        self, batch: dict[str, torch.Tensor], *, temperature: float, generator: torch.Generator
    ) -> torch.Tensor:
        """InfoNCE between two random contiguous crops of each history (each keeps at least
        half of it, at random places): the same user's crops are positives, every other example
        in the batch a negative. Crops are attention masks over one embedding pass."""
        mask = batch["attention_mask"]
        lengths = mask.sum(dim=1)  # (B,)
        positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
        x = self.embed(batch)

        def crop() -> torch.Tensor:
            u = torch.rand(2, len(lengths), generator=generator).to(mask.device)
            keep = torch.ceil(lengths / 2 + u[0] * (lengths - torch.ceil(lengths / 2)))
            keep = keep.clamp(min=1).long()
            start = torch.floor(u[1] * (lengths - keep + 1)).long().clamp(max=lengths - keep)
            inside = (positions >= start[:, None]) & (positions < (start + keep)[:, None])
            z = self.sequence_vector({"attention_mask": mask * inside}, inputs_embeds=x)
            return F.normalize(self.contrastive_head(z).float(), dim=1)

        a, b = crop(), crop()
        logits = a @ b.T / temperature
        target = torch.arange(len(a), device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
