"""The "sounds like" layer: every sound event of a recording or a stream gets the library's most
likely category ("sounds like: explosion, 0.8"), whether or not it is a library sound, and the
categories are counted per minute and in total (a table, JSON or CSV).

The events are those the scan already cuts out and embeds to propose candidates (events.sound_events:
a rise of 6 dB over the recent background), so the layer costs one small matrix product per batch,
not another pass of the model. The category comes from the library's own classifier
(classifier.py), fitted on first use and refit when the library's labels change; with a model
that tags what it hears (PANNs: AudioSet), each event also carries its top tags.
"""
from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .classifier import MIN_PROBABILITY, CategoryClassifier

RECHECK_SECONDS = 60.0  # how often a long-running layer looks whether the library's labels changed
KEEP_MINUTES = 7 * 24 * 60  # per-minute counts kept (a week); the totals keep counting beyond that


@dataclass(frozen=True)
class SoundEvent:
    start: float  # seconds in the recording or stream
    end: float
    label: str  # the most likely library category
    probability: float  # the classifier's probability for it
    tags: tuple = ()  # the model's own top tags ({"label", "p"} dicts; PANNs only)

    def as_dict(self) -> dict:
        d = {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label,
             "probability": round(self.probability, 3)}
        if self.tags:
            d["tags"] = list(self.tags)
        return d


class SoundsLike:
    """The library's category classifier, fitted lazily (thread-safe: the app's live sessions and
    monitors share one), and the labelling of embedded events with it."""

    def __init__(self, library, min_probability: float = MIN_PROBABILITY, recheck: float = RECHECK_SECONDS):
        self.library = library
        self.min_probability = min_probability
        self.recheck = recheck
        self._lock = threading.Lock()
        self._fitted: tuple | None = None  # (the labels' signature, the classifier or None)
        self._checked = -float("inf")

    def classifier(self) -> CategoryClassifier | None:
        """None when the library has fewer than two categories of two sounds (nothing to tell apart)."""
        with self._lock:
            if self._fitted is not None and time.monotonic() - self._checked < self.recheck:
                return self._fitted[1]
            self._checked = time.monotonic()
            signature = tuple(self.library.store.label_counts().items())
            if self._fitted is None or self._fitted[0] != signature:
                meta, vectors = self.library.vectors()
                clf = CategoryClassifier(vectors, list(meta["label"])) if len(meta) else None
                self._fitted = (signature, clf if clf is not None and clf.ready else None)
            return self._fitted[1]

    def label(self, windows: Sequence[tuple[float, float]], vectors: np.ndarray, tags: np.ndarray | None = None) -> list[SoundEvent]:
        """One SoundEvent per window whose category is likely enough (the others are left unnamed)."""
        if not len(windows):
            return []
        clf = self.classifier()
        if clf is None:
            return []
        probs = clf.probabilities(np.asarray(vectors))
        classes = clf.model.classes_
        embedder = self.library.embedder
        out = []
        for i, (s, e) in enumerate(windows):
            best = int(np.argmax(probs[i]))
            if probs[i, best] >= self.min_probability:
                top = tuple(embedder.top_tags(tags[i], 3) or ()) if tags is not None else ()
                out.append(SoundEvent(float(s), float(e), str(classes[best]), float(probs[i, best]), top))
        return out


@dataclass
class CategoryCounts:
    """Sound events per category, per minute of the recording or stream and in total."""

    minutes: dict[int, Counter] = field(default_factory=dict)
    total: Counter = field(default_factory=Counter)

    def add(self, events: Sequence[SoundEvent]) -> None:
        for ev in events:
            self.minutes.setdefault(int(ev.start // 60), Counter())[ev.label] += 1
            self.total[ev.label] += 1
        while len(self.minutes) > KEEP_MINUTES:
            del self.minutes[min(self.minutes)]

    def labels(self) -> list[str]:
        return [label for label, _ in self.total.most_common()]

    def as_dict(self) -> dict:
        return {"total": dict(self.total.most_common()),
                "per_minute": [{"minute": m, "counts": dict(c.most_common())} for m, c in sorted(self.minutes.items())]}

    def to_csv(self) -> str:
        """One row per minute (minute, its start as h:mm:ss, a count per category), then a total row."""
        labels = self.labels()
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["minute", "start", *labels])
        for m, c in sorted(self.minutes.items()):
            w.writerow([m, f"{m // 60}:{m % 60:02d}:00", *(c.get(lab, 0) for lab in labels)])
        w.writerow(["total", "", *(self.total[lab] for lab in labels)])
        return out.getvalue()


__all__ = ["CategoryCounts", "SoundEvent", "SoundsLike"]
