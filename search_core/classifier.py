"""A category classifier fitted on the library's own labelled sounds: the "sounds like" layer.

The neighbour vote (labels.py) can only be as right as a sound's nearest neighbour; a linear model
over the embeddings weighs every labelled sound of every category at once. Logistic regression
(multinomial, L2) on standardised unit embeddings (aisfx's cosines are compressed: every
dimension is rescaled so the penalty treats them alike), with classes balanced so that a category
of 40 sounds does not drown one of 5; refit whenever the library changes (a fit on the bundled 207
sounds takes about a second). Categories with fewer than MIN_EXAMPLES sounds are left out.
Measured (README "How good is it?"): on the bundled set, 0.60-0.63 by fold draw against the vote's
0.599 (C from 0.01 to 10000, raw or standardised, all gave 0.59-0.64); on 126 sounds of other
games, learnt from the bundled set, 0.373 against the vote's 0.286.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .labels import is_labelled

MIN_EXAMPLES = 2  # sounds a category needs to be learnt
C = 1.0  # inverse L2 strength on standardised features
MIN_PROBABILITY = 0.3  # under this the classifier makes no suggestion (too unsure to say)


@dataclass(frozen=True)
class Category:
    label: str
    probability: float  # the classifier's probability for it, 0-1

    def as_dict(self) -> dict:
        return {"label": self.label, "probability": round(self.probability, 3)}


class CategoryClassifier:
    """Fitted on (vectors, labels); `predict` gives the most likely category of a vector."""

    def __init__(self, vectors: np.ndarray, labels: Sequence[str]):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, y = _usable(vectors, labels)
        self.labels = sorted(set(y))
        self.model = None
        if len(self.labels) >= 2:
            self.model = make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=3000)).fit(x, y)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, categories) probabilities, columns in `self.model.classes_` order."""
        return self.model.predict_proba(_unit(vectors))

    def predict(self, vector: np.ndarray, min_probability: float = MIN_PROBABILITY) -> Category | None:
        if self.model is None:
            return None
        p = self.probabilities(np.asarray(vector, np.float32).reshape(1, -1))[0]
        best = int(np.argmax(p))
        return Category(str(self.model.classes_[best]), float(p[best])) if p[best] >= min_probability else None


def cross_validated(vectors: np.ndarray, labels: Sequence[str], folds: int = 10, seed: int = 0) -> list[str | None]:
    """Each sound's most likely category by a classifier fitted without it (stratified k-fold);
    None where it could not be predicted (no other category to tell it from)."""
    labels = list(labels)
    out: list[str | None] = [None] * len(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), int)
    for label in sorted(set(labels)):  # stratified; sorted: a set of strings iterates in a per-process order
        idx = np.flatnonzero(np.asarray(labels) == label)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    for k in range(folds):
        test = np.flatnonzero(fold == k)
        train = np.flatnonzero(fold != k)
        clf = CategoryClassifier(vectors[train], [labels[i] for i in train])
        for i in test:
            cat = clf.predict(vectors[i], min_probability=0.0)
            out[i] = cat.label if cat else None
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, np.float32).reshape(len(vectors), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _usable(vectors: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    counts = Counter(lab for lab in labels if is_labelled(lab))
    keep = [i for i, lab in enumerate(labels) if is_labelled(lab) and counts[lab] >= MIN_EXAMPLES]
    return _unit(np.asarray(vectors)[keep]) if keep else np.zeros((0, np.asarray(vectors).shape[-1]), np.float32), [labels[i] for i in keep]
