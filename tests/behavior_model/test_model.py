"""The pure model: shapes, a tiny batch it must overfit, next-event pre-training that learns."""

from __future__ import annotations

import torch

from behavior_model.config import ModelConfig
from behavior_model.model import BehaviorModel

CFG = ModelConfig(
    hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, dropout=0.0, max_events=12
)


def _batch(B: int = 8, T: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()

    def ints(high):
        return torch.randint(1, high, (B, T), generator=g) * mask

    return {
        "event_type": ints(6),
        "item": ints(20),
        "category": ints(5),
        "gap": ints(CFG.time_buckets),
        "age": ints(CFG.time_buckets),
        "hour": ints(24),
        "weekday": ints(7),
        "numeric": torch.rand(B, T, 2, generator=g),
        "text_vectors": torch.randn(B, T, CFG.text_dim, generator=g),
        "attention_mask": mask,
        "lengths": lengths,
    }


def _model():
    torch.manual_seed(0)
    return BehaviorModel(CFG, n_item_tokens=20, n_categories=5)


def test_forward_shapes_and_loss():
    batch = _batch()
    logits, loss = _model()(batch)
    assert logits.shape == (8, 2) and loss is None
    _, loss = _model()(batch, torch.zeros(8, 2))
    assert loss.ndim == 0 and loss.item() > 0


def test_padding_does_not_change_predictions():
    model = _model().eval()
    batch = _batch(B=2)
    longer = {
        k: torch.cat([v, torch.zeros_like(v[:, :4])], 1) if v.ndim > 1 else v
        for k, v in batch.items()
    }
    with torch.no_grad():
        a, _ = model(batch)
        b, _ = model(longer)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_overfits_a_tiny_batch():
    model = _model()
    batch = _batch()
    targets = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]] * 2, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        _, loss = model(batch, targets)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.5 and loss.item() < 0.02
    probs = torch.sigmoid(model.eval()(batch)[0])
    assert ((probs > 0.5).float() == targets).all()


def test_pretraining_learns_a_repeating_pattern():
    model = _model()
    batch = _batch()
    pattern = torch.tensor([1, 2, 3, 4] * 3)  # view, cart, wishlist, purchase, ...
    batch["event_type"] = pattern.expand(8, -1) * batch["attention_mask"]
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(80):
        loss = model.pretrain_loss(batch)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
