"""Near-duplicate finder: groups of library files that are the same sound in different versions.

Byte-identical files are already one entry (the indexer dedupes by sha256); this finds the rest:
re-encoded, resampled, gain-changed, trimmed, padded with silence, lightly noised.

Two stages, like `scan`, so a library is never compared pair by pair with the precise stage:
1. candidates: each file's nearest neighbours by embedding cosine (top `CANDIDATES`, exact);
2. verification (copies.py): the two waveforms' correlation, rescaled against chance; for each
   file's WARP_NEIGHBOURS nearest, also the room check (one file as the other through a short room
   response) and the warp-tolerant verifier of `scan` and, where it finds the pitch moved, the
   waveforms again at the speed it implies (a copy played faster or slower, or in a room, no
   longer lines up sample by sample).

Groups are complete-linkage: a file joins a group only when it matches *every* member, so chains
of "A is like B is like C" never grow into one mega-group. A group's score is its weakest pair.
A file under half another's length is never its duplicate; where it is a piece of it (a clip cut
from a longer recording), containment.py reports it as contained, with its offset.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .containment import Containment, find_contained
from .copies import PairSound, Sound, load_sound, sound_score

DEFAULT_THRESHOLD = 0.8  # chosen on benchmark seed 7: copies 0.74-1.0 (one 0.74-0.75), other pairs <= 0.70
CANDIDATES = 30  # neighbours per file proposed to the precise stage (top-10 misses 1 copy in 5)
MIN_COSINE = 0.5  # a pair under this embedding cosine is never a copy (measured: copies >= 0.7)
WARP_NEIGHBOURS = 5  # the warped check runs on each file's nearest few candidates
PAIR_CACHE = 512  # files whose warped features are kept (~0.8 MB a second of sound each)
LOSSLESS = {".wav", ".flac", ".aif", ".aiff", ".w64", ".au", ".caf"}

Progress = Callable[[int, int, str], None]  # (done, total, stage)


def candidate_pairs(vectors: np.ndarray, k: int = CANDIDATES, min_cosine: float = MIN_COSINE, block: int = 1024) -> dict[tuple[int, int], float]:
    """{(i, j): cosine} with i < j for each file's k nearest others (exact, in blocks of rows)."""
    n = len(vectors)
    k = min(k, n - 1)
    pairs: dict[tuple[int, int], float] = {}
    if k <= 0:
        return pairs
    v = np.asarray(vectors, dtype=np.float32)
    for start in range(0, n, block):
        sims = v[start : start + block] @ v.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not itself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, js in enumerate(top):
            i = start + r
            for j in js:
                s = float(sims[r, j])
                if s >= min_cosine:
                    pairs[(min(i, int(j)), max(i, int(j)))] = s
    return pairs


def local_order(items: list, edges: dict[tuple[int, int], float]) -> tuple[list, dict[tuple[int, int], float]]:
    """The items renumbered so that candidate pairs lie close together (reverse Cuthill-McKee on
    the candidate graph), and the edges in the new numbers: the finder goes through pairs by their
    first file and keeps a few files' features, so near numbers mean fewer files held and made
    again (measured on 10,327 files: 9,225 held at once before, 3,469 after)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n = len(items)
    if not edges:
        return items, edges
    ij = np.array(list(edges), dtype=np.int64)
    graph = coo_matrix((np.ones(len(ij)), (ij[:, 0], ij[:, 1])), shape=(n, n)).tocsr()
    order = reverse_cuthill_mckee((graph + graph.T).tocsr(), symmetric_mode=True)
    new = np.empty(n, dtype=np.int64)
    new[order] = np.arange(n)
    renumbered = {(int(min(new[i], new[j])), int(max(new[i], new[j]))): s for (i, j), s in edges.items()}
    return [items[k] for k in order], renumbered


def nearest_edges(edges: dict[tuple[int, int], float], k: int) -> set[tuple[int, int]]:
    """The pairs among `edges` that are within k nearest of either of their files."""
    ranked: dict[int, list[tuple[float, tuple[int, int]]]] = {}
    for e, cos in edges.items():
        for x in e:
            ranked.setdefault(x, []).append((cos, e))
    return {e for near in ranked.values() for _, e in sorted(near, reverse=True)[:k]}


def complete_linkage(n: int, edges: dict[tuple[int, int], float], threshold: float,
                     score: Callable[[int, int], float]) -> list[tuple[list[int], float]]:
    """Groups in which every pair scores >= threshold, built from the strongest edges first;
    `score` fills in pairs the candidate stage did not propose, and is asked again about a pair
    under the threshold that blocks a merge (the finder then runs its costlier checks on it).
    Returns (members, weakest pair)."""
    group_of = {i: i for i in range(n)}
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    weakest: dict[int, float] = {i: 1.0 for i in range(n)}
    known = dict(edges)

    def pair(i: int, j: int) -> float:
        key = (min(i, j), max(i, j))
        if key not in known or known[key] < threshold:  # unscored, or only by a cheaper check: ask
            known[key] = score(*key)
        return known[key]

    for (i, j), s in sorted(edges.items(), key=lambda e: -e[1]):
        if s < threshold:
            break
        gi, gj = group_of[i], group_of[j]
        if gi == gj:
            continue
        low = s
        for x in members[gi]:
            for y in members[gj]:
                low = min(low, pair(x, y))
                if low < threshold:
                    break
            if low < threshold:
                break
        if low < threshold:
            continue
        members[gi] += members.pop(gj)
        weakest[gi] = min(weakest[gi], weakest.pop(gj), low)
        for x in members[gi]:
            group_of[x] = gi
    return [(m, weakest[g]) for g, m in members.items() if len(m) > 1]


def keeper_order(item: dict) -> tuple:
    """The copy to keep comes first: lossless, then the first indexed (copies tend to arrive after
    their original), the highest sample rate, the shortest name ("x (1)", "x_copy" come later)."""
    name = str(item.get("name", ""))
    return (Path(str(item.get("path", ""))).suffix.lower() not in LOSSLESS, round(float(item.get("indexed_at") or 0)),
            -int(item.get("sample_rate") or 0), len(name), name)


@dataclass
class DupeGroup:
    score: float  # the weakest pair's correlation
    items: list[dict]  # id, name, label, path, duration, sample_rate; the suggested keeper first

    def as_dict(self) -> dict:
        fields = ("id", "name", "label", "path", "duration", "sample_rate")
        return {"score": round(self.score, 4), "items": [{k: it.get(k) for k in fields} for it in self.items]}


@dataclass
class DupesResult:
    threshold: float
    groups: list[DupeGroup] = field(default_factory=list)
    files: int = 0
    candidates: int = 0  # pairs the embedding stage proposed
    verified: int = 0  # pairs the precise stage scored
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0
    contained: list[Containment] = field(default_factory=list)  # clips that lie inside longer files

    @property
    def copies(self) -> list[dict]:
        """Every file but its group's suggested keeper: what "delete the extra copies" deletes."""
        return [it for g in self.groups for it in g.items[1:]]

    def as_dict(self, model: str, collection: str) -> dict:
        return {
            "model": model, "collection": collection, "threshold": self.threshold,
            "groups": [g.as_dict() for g in self.groups],
            "contained": [c.as_dict() for c in self.contained],
            "files": self.files, "candidate_pairs": self.candidates, "verified_pairs": self.verified,
            "seconds": round(self.seconds, 2),
        }


class DupeFinder:
    """One pass over a library: candidates, then their precise scores (kept, so that groups at
    several thresholds cost no more verification)."""

    def __init__(self, library, *, candidates: int = CANDIDATES, warp_neighbours: int = WARP_NEIGHBOURS):
        fields = ("id", "name", "label", "path", "duration", "sample_rate", "indexed_at")
        self.items = list(library.store.iterate(fields))
        self.edges: dict[tuple[int, int], float] = {}
        self.scores: dict[tuple[int, int], float] = {}
        self.warped: set[tuple[int, int]] = set()  # the pairs scored with the warped check too
        self.unreadable: list[str] = []
        self._sounds: dict[int, Sound | None] = {}
        if len(self.items) >= 2:
            meta, vectors = library.vectors()
            pos = {fid: i for i, fid in enumerate(meta["id"])}
            edges = candidate_pairs(vectors[[pos[it["id"]] for it in self.items]], candidates)
            self.items, self.edges = local_order(self.items, edges)
        self.warp_pairs = nearest_edges(self.edges, warp_neighbours)
        self._pairs: OrderedDict[int, PairSound | None] = OrderedDict()
        self._pairs_lock = threading.Lock()

    def _keep(self, i: int, sound: Sound | None) -> Sound | None:
        if sound is not None:
            sound.key = i
        self._sounds[i] = sound
        if sound is None and self.items[i]["name"] not in self.unreadable:
            self.unreadable.append(self.items[i]["name"])
        return sound

    def _sound(self, i: int) -> Sound | None:
        return self._sounds[i] if i in self._sounds else self._keep(i, load_sound(self.items[i]["path"]))

    def _pair_of(self, sound: Sound) -> PairSound | None:
        """A file's warped features, from a small cache (most recently used kept)."""
        with self._pairs_lock:
            if sound.key in self._pairs:
                self._pairs.move_to_end(sound.key)
                return self._pairs[sound.key]
        made = sound.pair()
        with self._pairs_lock:
            self._pairs[sound.key] = made
            while len(self._pairs) > PAIR_CACHE:
                self._pairs.popitem(last=False)
        return made

    def _pair(self, i: int, j: int, a: Sound | None, b: Sound | None, warp: bool) -> float:
        if warp:
            self.warped.add((i, j))
        return sound_score(a, b, warp=warp, pair_of=self._pair_of) if a is not None and b is not None else 0.0

    def score(self, i: int, j: int) -> float:
        """A pair's score; a pair scored without the warped check (not among its files' nearest)
        gets it when asked again: complete linkage asks about the pairs that block a group."""
        key = (min(i, j), max(i, j))
        if key not in self.scores or key not in self.warped:
            self.scores[key] = self._pair(*key, self._sound(key[0]), self._sound(key[1]), warp=True)
        return self.scores[key]

    def verify(self, progress: Progress | None = None, workers: int | None = None) -> None:
        """Scores every candidate pair. Pairs go by their first file, so each file is decoded
        about once and dropped when no later pair needs it; decoding and correlation run in a
        few threads (the FFTs and numpy release the GIL: 2.5-3x faster on 2 cores, measured)."""
        workers = workers or min(4, os.cpu_count() or 1)
        total = len(self.edges)
        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dupes") as pool:
            for i, group in itertools.groupby(sorted(self.edges), key=lambda e: e[0]):
                js = [j for _, j in group]
                for x in [x for x in self._sounds if x < i]:
                    self._sounds.pop(x)
                missing = [x for x in (i, *js) if x not in self._sounds]
                for x, sound in zip(missing, pool.map(lambda x: load_sound(self.items[x]["path"]), missing)):
                    self._keep(x, sound)
                a = self._sounds[i]
                warp = [(i, j) in self.warp_pairs for j in js]
                for j, sc in zip(js, pool.map(lambda j, w: self._pair(i, j, a, self._sounds[j], w), js, warp)):
                    self.scores[(i, j)] = sc
                done += len(js)
                if progress:
                    progress(done, total, "comparing candidates")
        self._sounds.clear()

    def groups(self, threshold: float = DEFAULT_THRESHOLD) -> list[DupeGroup]:
        threshold = check_threshold(threshold)
        verified = {e: self.scores[e] if e in self.scores else self.score(*e) for e in self.edges}
        found = complete_linkage(len(self.items), verified, threshold, self.score)
        self._sounds.clear()
        self._pairs.clear()
        out = []
        for members, weakest in sorted(found, key=lambda g: (-g[1], -len(g[0]))):
            out.append(DupeGroup(weakest, sorted((self.items[i] for i in members), key=keeper_order)))
        return out


def check_threshold(threshold: float) -> float:
    """The threshold as a float, or ValueError when it is outside (0, 1]."""
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    return threshold


def find_dupes(library, threshold: float = DEFAULT_THRESHOLD, *, candidates: int = CANDIDATES,
               progress: Progress | None = None) -> DupesResult:
    """Groups of near-duplicate files in a `Library`, strongest first."""
    threshold = check_threshold(threshold)
    started = time.perf_counter()
    finder = DupeFinder(library, candidates=candidates)
    finder.verify(progress)
    groups = finder.groups(threshold)
    if progress:
        progress(len(finder.edges), len(finder.edges), "clips inside longer files")
    contained = find_contained(finder.items, library, threshold)
    return DupesResult(threshold=threshold, groups=groups, files=len(finder.items), candidates=len(finder.edges),
                       verified=len(finder.scores), unreadable=finder.unreadable, seconds=time.perf_counter() - started,
                       contained=contained)
