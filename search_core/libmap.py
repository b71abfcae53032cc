"""The library map: every sound placed in 2-D so that sounds that sound alike lie together.

Layout: t-SNE of the file embeddings (cosine affinities; above 50 dimensions a PCA to 50 first,
the usual practice, which keeps 10k sounds near half a minute on 2 cores). Picked by measuring
how often a point's 5 nearest map neighbours share its category on the bundled set (207 clips,
16 categories, aisfx): t-SNE 0.45 (as high as in the embedding space itself), UMAP 0.40, PCA 0.26
(`python -m benchmarks --only map` prints it). PCA serves libraries too small for t-SNE.

A layout is computed once per library state: cached in memory, saved beside the library and
trusted on reopen only when it holds exactly the library's files. t-SNE cannot place new points,
so a query goes beside the sound most like it (see MapLayout.place).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

TSNE_MIN = 12  # fewer sounds than this: PCA (t-SNE needs perplexity < n)
PLACE_NEIGHBOURS = 5
SAME = 0.999  # a query this close to a library sound is that sound: its star sits on it
# 20 colours people tell apart (Trubetskoy's list, the palest last), so 16 categories never share one
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990", "#9a6324",
           "#800000", "#808000", "#000075", "#a9a9a9", "#ffe119", "#dcbeff", "#aaffc3", "#fabed4", "#ffd8b1", "#000000"]


def library_key(ids) -> str:
    """A short fingerprint of which files a layout holds."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


@dataclass
class MapLayout:
    ids: list[str]
    names: list[str]
    labels: list[str]
    xy: np.ndarray  # (n, 2)
    vectors: np.ndarray  # (n, dim), unit rows: to place a query among its neighbours
    method: str  # tsne | pca
    seconds: float = 0.0  # what computing it took
    source: str = "computed"  # or "saved": read back from beside the library

    @cached_property
    def key(self) -> str:
        return library_key(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def place(self, vector: np.ndarray, k: int = PLACE_NEIGHBOURS) -> tuple[float, float]:
        """Where a query goes: beside the sound most like it, drawn a quarter of the way towards the
        similarity-weighted mean of its k nearest (a plain mean can land between two islands, next
        to sounds that are not like it at all); on that sound when the query is in the library."""
        sims = self.vectors @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-sims)[: min(k, len(sims))]
        anchor = self.xy[top[0]]
        if sims[top[0]] >= SAME:
            return float(anchor[0]), float(anchor[1])
        w = np.clip(sims[top], 1e-3, None) ** 4  # the nearest count most
        pull = (self.xy[top] * w[:, None]).sum(0) / w.sum()
        x, y = anchor + 0.25 * (pull - anchor)
        return float(x), float(y)

    def agreement(self, k: int = 5) -> float:
        return neighbour_agreement(self.xy, self.labels, k)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"x": self.xy[:, 0], "y": self.xy[:, 1], "label": self.labels, "name": self.names, "id": self.ids})

    # -- saved beside the library ----------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, ids=np.array(self.ids), xy=self.xy.astype(np.float32), method=np.array(self.method), seconds=np.array(self.seconds))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, meta: pd.DataFrame, vectors: np.ndarray) -> "MapLayout | None":
        """The saved layout if it holds exactly these files (else None: compute again)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, xy, method, seconds = [str(i) for i in z["ids"]], z["xy"], str(z["method"]), float(z["seconds"])
        except (OSError, KeyError, ValueError):
            return None
        if len(ids) != len(meta) or xy.shape != (len(ids), 2) or not np.all(np.isfinite(xy)) or set(ids) != set(meta["id"]):
            return None
        order = {fid: i for i, fid in enumerate(meta["id"])}
        rows = [order[i] for i in ids]
        return cls(ids, [str(meta["name"].iloc[r]) for r in rows], [str(meta["label"].iloc[r]) for r in rows], xy.astype(np.float64),
                   vectors[rows], method, seconds, "saved")


def neighbour_agreement(points: np.ndarray, labels, k: int = 5) -> float:
    """The share of each point's k nearest neighbours (Euclidean, in `points`) with its label."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        return float("nan")
    from sklearn.neighbors import NearestNeighbors

    k = min(k, n - 1)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points, return_distance=False)[:, 1:]
    return float(np.mean(labels[idx] == labels[:, None]))


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros_like(vt)])[:2]
    return centred @ comps.T


def compute_layout(meta: pd.DataFrame, vectors: np.ndarray, method: str = "tsne", seed: int = 0) -> MapLayout:
    """A 2-D layout of these files (meta: id, name, label; vectors: unit rows)."""
    start = time.perf_counter()
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if method == "tsne" and n >= TSNE_MIN:
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        x = PCA(50, random_state=seed).fit_transform(vectors) if vectors.shape[1] > 50 and n > 50 else vectors
        # Unit rows: Euclidean distances order pairs as cosine does; after the PCA, so is the input
        xy = TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed, max_iter=500).fit_transform(x)
    else:
        method = "pca"
        xy = pca_2d(vectors)
    return MapLayout([str(i) for i in meta["id"]], [str(v) for v in meta["name"]], [str(v) for v in meta["label"]],
                     np.asarray(xy, dtype=np.float64), vectors, method, time.perf_counter() - start)


def map_figure(layout: MapLayout, query: tuple[float, float] | None = None, *, height: int = 560):
    """A plotly scatter: one trace per category (the legend filters: click one to hide it, double-
    click to show it alone), hover shows name and category, `customdata` is "<key>:<row>" so a click
    names the sound it meant even if the library changed since. The query is a ★."""
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = np.asarray(layout.labels)
    names = np.asarray(layout.names)
    key = layout.key
    for i, label in enumerate(sorted(set(layout.labels))):
        rows = np.flatnonzero(labels == label)
        fig.add_trace(go.Scattergl(
            x=np.round(layout.xy[rows, 0], 3), y=np.round(layout.xy[rows, 1], 3), mode="markers", name=f"{label} ({len(rows)})",
            marker={"size": 8 if len(layout) < 2000 else 5, "color": COLOURS[i % len(COLOURS)], "opacity": 0.85},
            text=names[rows], customdata=[f"{key}:{r}" for r in rows],
            hovertemplate="<b>%{text}</b><br>" + label.replace("%", "%%") + "<extra></extra>",
        ))
    if query is not None:
        fig.add_trace(go.Scatter(
            x=[query[0]], y=[query[1]], mode="markers", name="★ your query", customdata=["query"],
            marker={"symbol": "star", "size": 20, "color": "#111", "line": {"color": "#fff", "width": 1.5}},
            hovertemplate="<b>your last query</b><extra></extra>",
        ))
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest", clickmode="event",
        xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"}, legend={"itemsizing": "constant", "title": {"text": "Categories"}},
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode="pan",
    )
    return fig
