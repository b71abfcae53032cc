"""Leave-one-out retrieval quality on a labelled folder, through the real index and store.

Every clip is indexed into a throw-away Milvus Lite file, then each one is used as the query;
the query itself is dropped from its results and same-label hits count as relevant.
`knn_accuracy`: how often the category suggestion (the vote of the query's 5 nearest others) is
the clip's own label; no suggestion (a split vote) counts as wrong. `classifier_accuracy`: the same
for the category classifier (classifier.py), each clip predicted by a classifier fitted without it
(stratified 10-fold: a fit per clip would take minutes).

`evaluate_heldout` is the case a user meets: the library is one labelled folder, the queries come
from another (other games, other recordings), and both the vote and the classifier learn from the
library alone.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .embedders import MODEL_NAMES, ModelUnavailable
from .classifier import cross_validated
from .labels import suggest_label
from .settings import Settings

KS = (1, 5, 10)


def average_precision(relevant: np.ndarray) -> float:
    """AP of one ranking given a boolean relevance vector over all other items."""
    if not relevant.any():
        return float("nan")
    hits = np.cumsum(relevant)
    ranks = np.arange(1, len(relevant) + 1)
    return float((hits / ranks)[relevant].mean())


def score_rankings(labels: list[str], rankings: list[list[int]], ranked_labels: list[str] | None = None) -> dict:
    """Per-query metrics -> overall and per-label means. Rankings index `ranked_labels` (default:
    the queries themselves, leave-one-out)."""
    ranked_labels = labels if ranked_labels is None else ranked_labels
    rows = []
    for label, ranked in zip(labels, rankings):
        rel = np.array([ranked_labels[i] == label for i in ranked], dtype=bool)
        row = {"label": label, "map": average_precision(rel)}
        for k in KS:
            row[f"p@{k}"] = float(rel[:k].mean()) if len(rel) else float("nan")
        rows.append(row)
    return _summarise(pd.DataFrame(rows))


def _summarise(frame: pd.DataFrame) -> dict:
    metrics = [f"p@{k}" for k in KS] + ["map"]
    overall = {m: round(float(frame[m].mean()), 4) for m in metrics}
    per_label = {lab: {m: round(float(g[m].mean()), 4) for m in metrics} | {"n": int(len(g))} for lab, g in frame.groupby("label")}
    return {"overall": overall, "per_label": per_label}


def evaluate(folder: str | Path, settings: Settings, model: str, progress: bool = False) -> dict:
    from .library import Library

    with tempfile.TemporaryDirectory(prefix="soundalike-eval-") as tmp:
        lib = Library(settings.with_(data_dir=Path(tmp), milvus_uri=None, library="eval"), model=model)
        start = time.perf_counter()
        report = lib.index([folder])
        index_s = time.perf_counter() - start
        meta, vectors = _in_name_order(*lib.vectors())
        ids = list(meta["id"])
        labels = list(meta["label"])
        pos = {id_: i for i, id_ in enumerate(ids)}
        rankings = []
        predicted = []
        start = time.perf_counter()
        for i, id_ in enumerate(ids):  # the others only (leave-one-out)
            ranked, label = _ranked_and_voted(lib.store, vectors[i], pos, exclude=id_)
            rankings.append(ranked)
            predicted.append(label)
        search_s = time.perf_counter() - start
        from .store import Store

        Store.close_all()
    result = score_rankings(labels, rankings)
    correct = [p == lab for p, lab in zip(predicted, labels)]
    result["overall"]["knn_accuracy"] = round(float(np.mean(correct)), 4) if correct else float("nan")
    result["knn_accuracy"] = result["overall"]["knn_accuracy"]
    result["suggested"] = round(float(np.mean([p is not None for p in predicted])), 4) if predicted else float("nan")
    by_classifier = cross_validated(vectors, labels) if len(set(labels)) >= 2 else [None] * len(labels)
    result["overall"]["classifier_accuracy"] = round(float(np.mean([p == lab for p, lab in zip(by_classifier, labels)])), 4) \
        if labels else float("nan")
    result["classifier_accuracy"] = result["overall"]["classifier_accuracy"]
    result.update(
        model=model,
        clips=len(ids),
        failed=len(report.failed),
        index_seconds=round(index_s, 1),
        search_ms_per_query=round(1000 * search_s / max(1, len(ids)), 1),
    )
    if progress:
        print(f"{model}: {len(ids)} clips, P@5 {result['overall']['p@5']:.3f}", file=sys.stderr)
    return result


def evaluate_heldout(library: str | Path, queries: str | Path, settings: Settings, model: str, progress: bool = False) -> dict:
    """Each clip of `queries` searched in an index of `library` only: retrieval (same label =
    relevant), the neighbour vote and the classifier fitted on the library's sounds."""
    from .classifier import CategoryClassifier
    from .library import Library
    from .store import Store

    with tempfile.TemporaryDirectory(prefix="soundalike-eval-") as tmp:
        base = settings.with_(data_dir=Path(tmp), milvus_uri=None)
        lib = Library(base.with_(library="eval"), model=model)
        held = Library(base.with_(library="heldout"), model=model)
        start = time.perf_counter()
        failed = len(lib.index([library]).failed) + len(held.index([queries]).failed)
        index_s = time.perf_counter() - start
        lib_meta, lib_vectors = _in_name_order(*lib.vectors())
        meta, vectors = _in_name_order(*held.vectors())
        lib_labels = list(lib_meta["label"])
        pos = {id_: i for i, id_ in enumerate(lib_meta["id"])}
        rankings, predicted = [], []
        for vector in vectors:
            ranked, label = _ranked_and_voted(lib.store, vector, pos)
            rankings.append(ranked)
            predicted.append(label)
        Store.close_all()
    labels = list(meta["label"])
    clf = CategoryClassifier(lib_vectors, lib_labels)
    by_classifier = [c.label if c else None for c in (clf.predict(v, min_probability=0.0) for v in vectors)]
    result = score_rankings(labels, rankings, lib_labels)
    result["knn_accuracy"] = result["overall"]["knn_accuracy"] = _accuracy(predicted, labels)
    result["classifier_accuracy"] = result["overall"]["classifier_accuracy"] = _accuracy(by_classifier, labels)
    result["suggested"] = _accuracy([p is not None for p in predicted], [True] * len(predicted))
    for lab, row in result["per_label"].items():
        idx = [i for i, x in enumerate(labels) if x == lab]
        row["knn_accuracy"] = _accuracy([predicted[i] for i in idx], [lab] * len(idx))
        row["classifier_accuracy"] = _accuracy([by_classifier[i] for i in idx], [lab] * len(idx))
    result.update(model=model, clips=len(labels), library_clips=len(lib_labels), failed=failed, index_seconds=round(index_s, 1),
                  predictions=[{"name": n, "label": lab, "vote": p, "classifier": c}
                               for n, lab, p, c in zip(meta["name"], labels, predicted, by_classifier)])
    if progress:
        print(f"{model}: {len(labels)} held-out clips, classifier {result['classifier_accuracy']:.3f}", file=sys.stderr)
    return result


def _ranked_and_voted(store, vector: np.ndarray, pos: dict[str, int], exclude: str | None = None) -> tuple[list[int], str | None]:
    """Every indexed item ranked for `vector` (as positions in `pos`, less `exclude`) and the
    category its nearest neighbours vote for (None: a split vote)."""
    hits = store.search(vector, len(pos) - (exclude is not None), exclude_ids=[exclude] if exclude else [])
    sug = suggest_label([h.label for h in hits], [h.score for h in hits])
    return [pos[h.id] for h in hits], sug.label if sug else None


def _in_name_order(meta: pd.DataFrame, vectors: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """In name order (then content hash): the store may list items in another order from run to
    run, and the classifier's folds are drawn by position."""
    order = np.lexsort((meta["id"].to_numpy(), meta["name"].to_numpy()))
    return meta.iloc[order].reset_index(drop=True), vectors[order]


def _accuracy(predicted: list, truth: list) -> float:
    return round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 4) if truth else float("nan")


def evaluate_models(folder: str | Path, settings: Settings, models: list[str] | None = None, progress: bool = False,
                    queries: str | Path | None = None) -> dict:
    """Every requested (default: every available) model plus the MFCC baseline, same protocol.
    With `queries`: the held-out protocol (evaluate_heldout) instead of leave-one-out."""
    folder = Path(folder)
    protocol = f"queries from {queries}, library {folder}" if queries else "leave-one-out, same label = relevant"
    out: dict = {"data": str(folder), "protocol": protocol, "models": {}, "unavailable": {}}
    for name in models or list(MODEL_NAMES):
        try:
            quiet = settings.with_(allow_download=False)
            out["models"][name] = evaluate_heldout(folder, queries, quiet, name, progress) if queries \
                else evaluate(folder, quiet, name, progress)
        except ModelUnavailable as exc:
            out["unavailable"][name] = str(exc)
    return out


def format_table(result: dict) -> str:
    overall = pd.DataFrame(
        [{"model": m, "clips": r["clips"], **r["overall"], "index s": r["index_seconds"], "search ms/q": r["search_ms_per_query"]}
         for m, r in result["models"].items()]
    )
    lines = [f"Retrieval on {result['data']} ({result['protocol']})", "", overall.to_string(index=False, float_format="%.3f")]
    per = {}
    for m, r in result["models"].items():
        for lab, vals in r["per_label"].items():
            per.setdefault(lab, {"label": lab, "n": vals["n"]})[m] = vals["p@5"]
    if per:
        lines += ["", "P@5 per category:", pd.DataFrame(list(per.values())).to_string(index=False, float_format="%.3f")]
    for m, why in result["unavailable"].items():
        lines += ["", f"{m}: not available here ({why.split('. ')[0]})"]
    return "\n".join(lines)
