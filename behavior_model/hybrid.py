"""The hybrid family: LightGBM on the analyst's RFM and activity features plus what the event
transformer read in each user's sequence (its logits and its user vector, reduced), cross-fitted
by user folds so that LightGBM never sees a sequence output of a user the transformer trained on.

Cross-fitting. Users fall into ``folds`` folds by a stable hash of their id (``data.user_fold``:
the same fold at every cutoff and in every run). For fold k, a transformer is fitted on the
training data without fold k's users (``TrainingData.excluding_fold``: every cutoff, validation
included) and reads fold k's users wherever the stack needs them: the training cutoffs, the
validation cutoff, and any cutoff it scores. Every sequence output LightGBM is fitted on, stopped
on or scores is therefore out of fold.

Each fold's transformer learns its own basis for the user vector, so the vectors are mapped onto
fold 0's basis by an affine least-squares fit on the same anchor users (the validation users,
read by every fold's model; no labels involved) before a PCA reduces them. The PCA is fitted on
the validation users' out-of-fold vectors, which the stack reads first (it stops its trees
there), so the training rows keep only their components as they stream past: the stack holds
``hybrid_components`` numbers per row, not the hidden width. The logits need no mapping: every
fold predicts the same targets.

``fit_hybrid`` is what ``families.fit_data`` fits for this family: the training run (shards) and
the evaluation protocol (``behavior_model.evaluate``, in memory) fit and score the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from behavior_model.baselines import fit_lightgbm
from behavior_model.calibration import apply_columns, fit_columns, logit
from behavior_model.config import LABELS, TrainConfig
from behavior_model.data import Examples, user_fold
from behavior_model.explain import describe_feature
from behavior_model.features import transform
from behavior_model.fitted import TrainedModel, calibration_priors, reference_of, trained_model
from behavior_model.predictor import BehaviorPredictor
from behavior_model.serving import Predictor
from behavior_model.trainer import fit_event_transformer
from behavior_model.training_data import TrainingData
from pipeline.contracts import FEATURE_NAMES

log = logging.getLogger(__name__)

SEQ_LOGITS = tuple(f"seq_logit_{label}" for label in LABELS)
COMPONENT_PREFIX = "seq_pc_"


def _affine_map(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(d + 1, d) least-squares affine map from ``source`` rows onto ``target`` rows."""
    design = np.hstack([source, np.ones((len(source), 1))])
    return np.linalg.lstsq(design, target, rcond=None)[0]


class HybridModel:
    """LightGBM per label on the RFM features, the sequence logits and the first
    ``n_components`` principal components of the user vector (0: the logits alone); the tree
    count early-stopped (log loss) on the stopping rows (``baselines.fit_lightgbm``: the
    validation cutoff, where the transformers pick their epoch and Platt is fitted), the trees
    fitted on the training rows. The PCA is fitted first (``fit_reduction``), so that ``rows``
    keeps the components alone. What it keeps is plain arrays and LightGBM boosters, so it
    travels in a checkpoint (``state``, ``from_state``)."""

    def __init__(self, *, n_components: int = 8, seed: int = 7) -> None:
        self.n_components = n_components
        self.seed = seed
        self.boosters: dict[str, object] = {}
        # The PCA of the user vectors: x -> (x - mean) @ components.T.
        self.pca_mean: np.ndarray | None = None
        self.pca_components: np.ndarray | None = None

    def fit_reduction(self, vectors: np.ndarray) -> HybridModel:
        """The PCA of user vectors (n, hidden), here the validation users' out-of-fold ones."""
        if self.n_components:
            from sklearn.decomposition import PCA

            k = min(self.n_components, *vectors.shape)
            pca = PCA(k, random_state=self.seed).fit(vectors)
            self.pca_mean, self.pca_components = pca.mean_, pca.components_
        return self

    def sequence_columns(self, logits: np.ndarray, vectors: np.ndarray) -> pd.DataFrame:
        """What the stack reads of the sequence model: its logits and the vector's components."""
        out = pd.DataFrame(logits, columns=list(SEQ_LOGITS))
        if self.pca_components is not None:
            reduced = (vectors - self.pca_mean) @ self.pca_components.T
            for i in range(reduced.shape[1]):
                out[f"{COMPONENT_PREFIX}{i}"] = reduced[:, i]
        return out

    def rows(self, features: np.ndarray, logits: np.ndarray, vectors: np.ndarray) -> pd.DataFrame:
        """The stack's input rows: raw RFM features, sequence logits and vector components."""
        seq = self.sequence_columns(logits, vectors)
        return pd.concat([pd.DataFrame(features, columns=list(FEATURE_NAMES)), seq], axis=1)

    def matrix(self, rows: pd.DataFrame) -> np.ndarray:
        return np.hstack(
            [
                transform(rows[list(FEATURE_NAMES)]),
                rows[list(SEQ_LOGITS)].to_numpy(float),
                rows.filter(like=COMPONENT_PREFIX).to_numpy(float),
            ]
        )

    def fit(self, rows: pd.DataFrame, stop: pd.DataFrame | None = None) -> HybridModel:
        """Fit on ``rows``; stop the tree count on ``stop`` (None: ``DEFAULT_TREES``)."""
        both = rows if stop is None else pd.concat([rows, stop], ignore_index=True)
        x = self.matrix(both)
        held = np.arange(len(both)) >= len(rows)
        for label in LABELS:
            y = both[label].to_numpy(dtype=float)
            model, _ = fit_lightgbm(
                x, y, held=held if stop is not None else None, fitted=~held, refit=~held,
                seed=self.seed,
            )  # fmt: skip
            self.boosters[label] = model.booster_
        return self

    def predict(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        x = self.matrix(rows)
        return {label: self.boosters[label].predict(x) for label in LABELS}

    def contributions(self, rows: pd.DataFrame, label: str) -> np.ndarray:
        """(n, columns) TreeSHAP contributions to ``label``'s log-odds (LightGBM's
        ``pred_contrib``, the expected value left out)."""
        return self.boosters[label].predict(self.matrix(rows), pred_contrib=True)[:, :-1]

    def state(self) -> dict:
        tensor = lambda a: None if a is None else torch.from_numpy(np.asarray(a, np.float64))  # noqa: E731
        return {
            "n_components": self.n_components, "seed": self.seed,
            "pca_mean": tensor(self.pca_mean), "pca_components": tensor(self.pca_components),
            "boosters": {label: b.model_to_string() for label, b in self.boosters.items()},
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: dict) -> HybridModel:
        import lightgbm as lgb

        model = cls(n_components=state["n_components"], seed=state["seed"])
        array = lambda t: None if t is None else t.numpy()  # noqa: E731
        model.pca_mean, model.pca_components = (
            array(state["pca_mean"]),
            array(state["pca_components"]),
        )
        model.boosters = {k: lgb.Booster(model_str=v) for k, v in state["boosters"].items()}
        return model


SEQUENCE_DRIVER = "sequence"


class HybridPredictor(Predictor):
    """The hybrid family's predictor: one event transformer per user fold (each fitted without
    that fold's users), the affine maps of their user vectors onto fold 0's basis, and the
    LightGBM stack (``HybridModel``). A user is read by the transformer of its own fold, the one
    that never trained on it, when scoring as when the stack was fitted. The fold transformers
    share one vocabulary, item texts and architecture (``model``), so one ``Examples`` feeds all."""

    family = "hybrid"

    def __init__(
        self,
        folds: list[BehaviorPredictor],
        maps: list[np.ndarray],
        stack: HybridModel | None = None,
        *,
        calibration: list[tuple[float, float]] | None = None,
        reference: dict | None = None,
    ) -> None:
        if len(folds) < 2 or len(maps) != len(folds):
            raise ValueError(f"{len(folds)} fold transformers and {len(maps)} maps")
        self.folds, self.maps, self.stack = folds, maps, stack
        # Platt (a, b) per label on the stack's probabilities; None = the stack's own.
        self.calibration = calibration
        self.reference = reference

    # What reads the examples: the fold transformers' shared architecture, vocabulary, labels.
    @property
    def model(self) -> torch.nn.Module:
        return self.folds[0].model

    @property
    def vocab(self):
        return self.folds[0].vocab

    @property
    def labels(self):
        return self.folds[0].labels

    @property
    def text_model_path(self) -> str | None:
        return self.folds[0].text_model_path

    @property
    def embedder(self):
        return self.folds[0].embedder

    @embedder.setter
    def embedder(self, embedder) -> None:
        for fold in self.folds:
            fold.embedder = embedder

    def examples(self, events: pd.DataFrame, cutoff, *, with_labels: bool) -> Examples:
        return self.folds[0].examples(events, cutoff, with_labels=with_labels)

    def out_of_fold(self, ex: Examples) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold (logits (n, 2), user vectors in fold 0's basis (n, hidden)): each user
        read by its own fold's transformer."""
        fold = user_fold(ex.user_id, len(self.folds))
        logits = np.zeros((len(ex), len(LABELS)))
        vectors = np.zeros((len(ex), self.model.cfg.hidden_size))
        for k, (predictor, mapping) in enumerate(zip(self.folds, self.maps, strict=True)):
            rows = np.flatnonzero(fold == k)
            if len(rows):
                p, v = predictor.predict_with_vectors(ex, calibrated=False, rows=rows)
                logits[rows] = logit(p)
                vectors[rows] = np.hstack([v, np.ones((len(v), 1))]) @ mapping
        return logits, vectors

    def predict_with_vectors(
        self, ex: Examples, *, batch_size: int = 512, calibrated: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, 2) in LABELS order and the user vectors (fold 0's basis)."""
        logits, vectors = self.out_of_fold(ex)
        p = self.stack.predict(self.stack.rows(ex.features, logits, vectors))
        probs = np.column_stack([p[label] for label in LABELS])
        return (apply_columns(probs, self.calibration) if calibrated else probs), vectors

    def predict_examples(
        self, ex: Examples, *, batch_size: int = 512, calibrated: bool = True
    ) -> np.ndarray:
        return self.predict_with_vectors(ex, calibrated=calibrated)[0]

    def explain(self, ex: Examples, *, top_k: int = 3) -> pd.DataFrame:
        """The top ``top_k`` drivers per user and label, as ``behavior_model.explain`` words them:
        each RFM feature (``feature:<name>``) and the sequence model's reading as one driver
        (``sequence``: its logits and vector components together). Weights are the stack's TreeSHAP
        contributions in calibrated logit units (times Platt's slope): > 0 raises the
        probability."""
        rows = self.stack.rows(ex.features, *self.out_of_fold(ex))
        n_features = len(FEATURE_NAMES)
        out: list[tuple] = []
        for j, label in enumerate(LABELS):
            slope = self.calibration[j][0] if self.calibration else 1.0
            contrib = self.stack.contributions(rows, label) * slope
            weights = np.hstack(
                [contrib[:, :n_features], contrib[:, n_features:].sum(1, keepdims=True)]
            )
            for i in range(len(ex)):
                read = int(ex.offsets[i + 1] - ex.offsets[i])
                names = [
                    *((f"feature:{n}", describe_feature(n, ex.features[i, f])) for f, n in enumerate(FEATURE_NAMES)),
                    (SEQUENCE_DRIVER, f"the order and content of the last {read} events, as the sequence model reads them"),
                ]  # fmt: skip
                order = sorted(range(len(names)), key=lambda c: (-abs(weights[i, c]), names[c][0]))
                for rank, c in enumerate(order[:top_k], start=1):
                    out.append((ex.user_id[i], label, rank, *names[c], float(weights[i, c])))
        return pd.DataFrame(
            out, columns=["user_id", "label", "rank", "driver", "description", "weight"]
        )

    def checkpoint(self) -> dict:
        return {
            "folds": [fold.checkpoint() for fold in self.folds],
            "maps": [torch.from_numpy(np.asarray(m, np.float64)) for m in self.maps],
            "stack": self.stack.state(),
            "calibration": self.calibration,
            "reference": self.reference,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict, *, device: str = "cpu") -> HybridPredictor:
        return cls(
            [BehaviorPredictor.from_checkpoint(f, device=device) for f in ckpt["folds"]],
            [m.numpy() for m in ckpt["maps"]],
            HybridModel.from_state(ckpt["stack"]),
            calibration=[tuple(c) for c in ckpt["calibration"]]
            if ckpt.get("calibration")
            else None,
            reference=ckpt.get("reference"),
        )


def fit_hybrid(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
) -> TrainedModel:
    """The hybrid family on a run's data: ``fold_transformers``, then ``fit_stack``."""
    return fit_stack(data, fold_transformers(data, cfg, on_epoch=on_epoch), cfg)


def fold_transformers(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
) -> list[BehaviorPredictor]:
    """``cfg.hybrid_folds`` event transformers, transformer k fitted
    (``trainer.fit_event_transformer``) without user fold k's users. Each one's epochs go to ``on_epoch`` as ``fold<k>_<metric>``."""
    folds = cfg.hybrid_folds
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 user folds, got {folds}")
    sequence_cfg = replace(cfg, model=replace(cfg.model, backbone="event_transformer"))
    transformers = []
    for k in range(folds):
        log.info("hybrid: fitting the transformer without user fold %d/%d", k + 1, folds)
        report = None
        if on_epoch is not None:
            report = lambda m, step, k=k: on_epoch({f"fold{k}_{n}": v for n, v in m.items()}, step)  # noqa: E731
        view = data.excluding_fold(k, folds)
        transformers.append(fit_event_transformer(view, sequence_cfg, on_epoch=report).predictor)
    return transformers


def fit_stack(
    data: TrainingData, transformers: list[BehaviorPredictor], cfg: TrainConfig
) -> TrainedModel:
    """The stack on the fold transformers' out-of-fold outputs: vector maps and the PCA on the
    validation users; LightGBM (``cfg.hybrid_components`` vector components) fitted on the
    training cutoffs and stopped on the validation cutoff; Platt on the validation cutoff as for
    the other families; the drift reference."""
    model_cfg = transformers[0].model.cfg
    anchors = [
        np.concatenate([t.predict_with_vectors(ex, calibrated=False)[1] for ex in data.example_chunks("val", model_cfg)])
        for t in transformers
    ]  # fmt: skip
    predictor = HybridPredictor(transformers, [_affine_map(a, anchors[0]) for a in anchors])

    stack = HybridModel(n_components=cfg.hybrid_components, seed=cfg.seed)
    val = [predictor.out_of_fold(ex) for ex in data.example_chunks("val", model_cfg)]
    stack.fit_reduction(np.vstack([vectors for _, vectors in val]))

    def stack_rows(part: str, outputs) -> pd.DataFrame:
        seq = [stack.sequence_columns(logits, vectors) for logits, vectors in outputs]
        return pd.concat([data.table(part), pd.concat(seq, ignore_index=True)], axis=1)

    train = (predictor.out_of_fold(ex) for ex in data.example_chunks("train", model_cfg))
    predictor.stack = stack.fit(stack_rows("train", train), stop=stack_rows("val", val))
    val_labels = data.labels("val")
    raw_val = data.predict(predictor, "val", calibrated=False)
    if cfg.calibrate:
        predictor.calibration = fit_columns(
            raw_val, val_labels, LABELS, priors=calibration_priors(data, cfg)
        )
    val_probs = data.predict(predictor, "val")
    predictor.reference = reference_of(data.table("latest"), data.predict(predictor, "latest"))
    return trained_model(predictor, data, val_labels, raw_val, val_probs, history=[])
