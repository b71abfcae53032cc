"""Library map benchmark: is the layout worth it, and does the map stay responsive at 10k sounds?

Quality, on the bundled set indexed with the real model: the share of each sound's 5 nearest
neighbours that share its category, in the embedding space itself (cosine) and on the map for
PCA, the project's t-SNE and (when installed) UMAP. A map that keeps neighbourhoods scores near
the embedding space; one blob scores far below it.

Responsiveness, on a generated library of N sounds (clustered unit vectors in the model's
dimension, 40 categories, each pointing at a real bundled clip so clicks play): computing the
layout (once per library state), reading it back after a restart, building the figure and its
size on the wire; then in Debian's Chromium against the running app: opening the map tab until
every point is drawn (in a fresh browser, so plotly.js itself, 4.6 MB, is loaded too), hovering a
point until its name shows, clicking it until the player holds it. The same browser timings on the
bundled set (207 sounds) are printed beside, to tell the fixed costs from those of 10k points.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .common import SAMPLE

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def timed(fn):
    """(fn(), seconds it took)."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def knn_agreement_cosine(vectors: np.ndarray, labels, k: int = 5) -> float:
    labels = np.asarray(labels)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    idx = np.argsort(-sims, axis=1)[:, :k]
    return float(np.mean(labels[idx] == labels[:, None]))


def quality(work: Path, model: str) -> list[dict]:
    from search_core.libmap import compute_layout, neighbour_agreement, pca_2d
    from search_core.library import Library
    from search_core.settings import Settings
    from search_core.store import Store

    settings = Settings(data_dir=work / f"map-quality-{model}", model=model, allow_download=False)
    lib = Library(settings)
    if lib.count() == 0:
        lib.index([SAMPLE])
    meta, vecs = lib.vectors()
    labels = list(meta["label"])
    rows = [{"layout": "embedding space (cosine)", "knn5_same_category": round(knn_agreement_cosine(vecs, labels), 3), "seconds": 0.0}]
    t = time.perf_counter()
    rows.append({"layout": "PCA", "knn5_same_category": round(neighbour_agreement(pca_2d(vecs), labels), 3),
                 "seconds": round(time.perf_counter() - t, 2)})
    layout = compute_layout(meta, vecs)
    rows.append({"layout": "t-SNE (the app's map)", "knn5_same_category": round(layout.agreement(), 3), "seconds": round(layout.seconds, 2)})
    try:
        import umap  # noqa: F401 - optional: not a dependency of the app
    except ImportError:
        rows.append({"layout": "UMAP (not installed)", "knn5_same_category": None, "seconds": None})
    else:
        t = time.perf_counter()
        xy = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0).fit_transform(vecs)
        rows.append({"layout": "UMAP (n_neighbors 15)", "knn5_same_category": round(neighbour_agreement(xy, labels), 3),
                     "seconds": round(time.perf_counter() - t, 2)})
    for row in rows:
        row.update(model=model, sounds=len(meta), categories=len(set(labels)))
    Store.close_all()
    return rows


def generated_library(data: Path, n: int, model: str) -> None:
    """A Lite library of n generated sounds for `model`'s collection (vectors only: no model runs)."""
    from search_core.embedders import get_embedder
    from search_core.settings import Settings
    from search_core.store import Record, Store, collection_name

    settings = Settings(data_dir=data, model=model, allow_download=False)
    dim = get_embedder(settings).dim
    clips = sorted(p for p in SAMPLE.rglob("*") if p.suffix in (".ogg", ".wav", ".flac"))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, dim)).astype(np.float32)
    store = Store(settings.uri, collection_name(settings.library, model), model, dim)
    now = time.time()
    for start in range(0, n, 2000):
        k = min(n, start + 2000) - start
        cat = rng.integers(0, 40, k)
        x = centres[cat] + 1.2 * rng.normal(size=(k, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        store.upsert([Record(f"{start + i:064x}", x[i], str(clips[(start + i) % len(clips)]), f"sound_{start + i}",
                             f"category_{cat[i]:02d}", 1.0, 44100, now) for i in range(k)])
    Store.close_all()


def responsiveness(work: Path, n: int, model: str, browser: bool) -> dict:
    from search_core.libmap import map_figure
    from search_core.service import Service
    from search_core.settings import Settings
    from search_core.store import Store

    data = work / f"map-{n}"
    if not data.exists():
        generated_library(data, n, model)
    settings = Settings(data_dir=data, model=model, allow_download=False)
    for saved in (data / "soundalike.map").glob("*.npz"):  # time the computation, not a saved copy
        saved.unlink()
    service = Service(settings)
    layout, compute_s = timed(service.library_map)
    again, cached_s = timed(service.library_map)  # the next tab open
    assert again is layout
    Store.close_all()
    reopened, reopen_s = timed(Service(settings).library_map)  # a restart
    wire, figure_s = timed(lambda: map_figure(layout, layout.place(layout.vectors[0])).to_json())
    Store.close_all()
    row = {"sounds": n, "model": model, "layout": layout.method, "compute_s": round(compute_s, 1), "cached_ms": round(cached_s * 1000, 2),
           "after_restart_s": round(reopen_s, 2), "restart_read_saved": reopened.source == "saved", "figure_ms": round(figure_s * 1000, 1), "figure_kb": round(len(wire) / 1024)}
    if browser and os.path.exists(CHROMIUM):
        row.update(in_browser(data, model, work))
    return row


def in_browser(data: Path, model: str, work: Path) -> dict:
    """Milliseconds (medians of 5) as a visitor meets them in Chromium against the running app."""
    from playwright.sync_api import sync_playwright

    from .running import app_process

    opened, hovered, played = [], [], []
    with app_process(data, {"SOUNDALIKE_MODEL": model, "SOUNDALIKE_ALLOW_DOWNLOAD": "0"}, work / "map-app.log") as (url, _):
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for attempt in range(5):
                page = b.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.wait_for_function("() => document.querySelector('#header')?.innerText.includes('sounds in')", timeout=120_000)
                t = time.perf_counter()
                page.get_by_role("tab", name="Library map").click()
                page.wait_for_function("""() => { const d = document.querySelector('#library-map .js-plotly-plot');
                    return d && d._fullData && d._fullData.reduce((s, t) => s + t.x.length, 0) > 0; }""", timeout=120_000)
                opened.append((time.perf_counter() - t) * 1000)
                x, y, name = page.evaluate("""k => { const d = document.querySelector('#library-map .js-plotly-plot'), fl = d._fullLayout;
                    const t = d._fullData[k % d._fullData.length], r = d.getBoundingClientRect(), i = Math.floor(t.x.length / 2);
                    return [r.left + fl._size.l + fl.xaxis.l2p(t.x[i]), r.top + fl._size.t + fl.yaxis.l2p(t.y[i]), t.text[i]]; }""", attempt)
                t = time.perf_counter()
                page.mouse.move(x, y)
                page.wait_for_function("() => document.querySelectorAll('#library-map .hovertext').length > 0", timeout=30_000)
                hovered.append((time.perf_counter() - t) * 1000)
                # where points overlap, the one under the cursor is the one the hover names
                shown = page.evaluate("""() => { const l = document.querySelector('#library-map .hovertext text tspan.line');
                    return l ? l.textContent : null; }""") or name
                t = time.perf_counter()
                page.mouse.click(x, y)
                page.wait_for_function("n => document.querySelector('#map-player')?.innerText.includes(n + ' — ')", arg=shown, timeout=30_000)
                played.append((time.perf_counter() - t) * 1000)
                page.close()
            b.close()
    return {"open_tab_ms": round(statistics.median(opened)), "hover_ms": round(statistics.median(hovered)),
            "click_to_player_ms": round(statistics.median(played))}


def bench_map(work: Path, model: str, smoke: bool, sizes: tuple[int, ...]) -> dict:
    out = {"quality": quality(work, model), "scale": []}
    if not smoke and os.path.exists(CHROMIUM):  # the bundled set in the browser: the fixed costs
        out["scale"].append({"sounds": out["quality"][0]["sounds"], "model": model, "layout": "tsne",
                             **in_browser(work / f"map-quality-{model}", model, work)})
    for n in sizes:
        out["scale"].append(responsiveness(work, n, model, browser=not smoke))
        print(f"map {n}: {json.dumps(out['scale'][-1])}", file=sys.stderr)
    return out


def map_tables(result: dict) -> list[tuple[str, list[dict]]]:
    return [("map quality (bundled set)", result["quality"]), ("map at scale", result["scale"])]


if __name__ == "__main__":  # pragma: no cover - handy alone: python -m benchmarks.libmap
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(bench_map(Path(tmp), "aisfx", False, (10_000,)), indent=2))
