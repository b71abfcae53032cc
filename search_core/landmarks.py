"""Landmark candidates: a second way to propose library sounds to the verifier, one that sees
through a loud bed.

The embedding stage (scan.py) embeds a window or a sound event whole; a short sound a few dB over
music is embedded as mostly music, and its library file is not among the window's nearest (on the
wild benchmark's tuning recordings, 16 of the 26 copies the verifier would take were never
proposed). Spectral peaks are local: where the sound is louder than the music in some cells, its
peaks are still peaks there (Wang's landmarks, as in Shazam, audfprint, Panako).

- **peaks**: local maxima of the verifier's log-frequency spectrogram (warped.logspec, 24 bands per
  octave), standing out from their surroundings by PROMINENCE_DB, at most PEAKS_PER_SECOND;
- **pairs**: each peak with the next FAN_OUT peaks within MAX_DT frames and MAX_DB bands;
- **tolerant lookup**: a recording pair matches a library pair with the same band difference (a
  pitch shift moves both peaks along the log-frequency axis alike), a time difference within the
  verifier's time scales (DT_RATIO), and a first band within +-MAX_SHIFT (the pitch shifts the
  verifier tries). So tape speed, pitch and stretch changes keep their pairs, unlike a hash of
  exact (f1, f2, dt);
- **votes**: matches vote for (library file, onset); an onset with MIN_VOTES matching pairs or more
  is a candidate. The verifier decides; this stage only has to offer the right sound.
- **share**: each second of the recording proposes its PER_SECOND candidates with the largest share
  of their file's own pairs matched (votes / the file's pairs), not the most votes. Under music a
  long, dense library sound collects a handful of chance votes anywhere, as many as a short click
  that is really there gets in all: ranked by votes, 113 of 218 inserted library sounds of the wild
  benchmark's tuning seeds 0-5 were among their second's first 8 candidates; by share, 145. The
  share depends on the file alone, so the live monitor, which sees a few seconds at a time, still
  proposes what scan does.

The library's peaks are computed once per file from its audio and cached on disk by file id
(`LandmarkIndex.refresh`), so a new scan process reads them back instead of decoding the library.
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from . import warped

VERSION = 1  # of the peak picking: cached peaks of another version are recomputed
FPS = warped.FRAMES_PER_SECOND
PEAK_SIZE = (7, 5)  # bands x frames: a peak is the maximum of this neighbourhood
CONTEXT_SIZE = (15, 15)  # ... and exceeds the mean of this one by PROMINENCE_DB
PROMINENCE_DB = 6.0
PEAKS_PER_SECOND = 40
FAN_OUT = 6
MAX_DT = 40  # frames (0.46 s)
MAX_DB = 24  # bands (an octave)
MAX_SHIFT = warped.MAX_SHIFT
DT_RATIO = (min(warped.TIME_SCALES) - 0.02, max(warped.TIME_SCALES) + 0.02)
VOTE_BIN = 8  # frames (93 ms): the onset's resolution; neighbouring bins are summed
MIN_VOTES = 4
PER_SECOND = 8  # candidates proposed per second of the recording, at most
QUERY_CHUNK = 4096  # recording pairs looked up and counted at once (bounds the matches held in memory)


def peaks(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bands) of the spectral peaks of log-frequency features, by frame."""
    from scipy.ndimage import maximum_filter, uniform_filter

    if feats.shape[1] == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    f = feats.astype(np.float32)
    top = maximum_filter(f, size=PEAK_SIZE, mode="constant", cval=warped.FLOOR_DB)
    around = uniform_filter(f, size=CONTEXT_SIZE, mode="nearest")
    strength = f - around
    ok = (f == top) & (strength >= PROMINENCE_DB) & (f > warped.FLOOR_DB + 20.0)
    b, t = np.nonzero(ok)
    s = strength[b, t]
    # at most PEAKS_PER_SECOND per second: the most prominent of each second
    second = (t / FPS).astype(np.int64)
    order = np.lexsort((-s, second))
    b, t, second = b[order], t[order], second[order]
    first = np.searchsorted(second, second, side="left")
    keep = np.arange(len(second)) - first < PEAKS_PER_SECOND
    b, t = b[keep], t[keep]
    order = np.lexsort((b, t))
    return t[order].astype(np.int32), b[order].astype(np.int32)


def pairs(t: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(anchor frame, anchor band, dt, db) of each peak with the next FAN_OUT peaks in reach."""
    n = len(t)
    out: list[tuple[np.ndarray, ...]] = []
    taken = np.zeros(n, np.int32)
    for k in range(1, 4 * FAN_OUT + 1):
        if k >= n:
            break
        i = np.arange(n - k)
        j = i + k
        dt, db = t[j] - t[i], b[j] - b[i]
        ok = (dt >= 1) & (dt <= MAX_DT) & (np.abs(db) <= MAX_DB) & (taken[i] < FAN_OUT)
        i, j = i[ok], j[ok]
        taken[i] += 1
        out.append((t[i], b[i], dt[ok], db[ok]))
        if not (t[k:] - t[:-k] <= MAX_DT).any():
            break
    if not out:
        z = np.zeros(0, np.int32)
        return z, z, z, z
    return tuple(np.concatenate(c).astype(np.int32) for c in zip(*out))


def _key(dt: np.ndarray, db: np.ndarray) -> np.ndarray:
    return (db.astype(np.int64) + MAX_DB) * (MAX_DT + 1) + dt


@dataclass
class Candidate:
    file_id: str
    onset: float  # seconds in the recording where the library sound's first frame lies
    votes: int
    lib_time: float  # seconds into the library sound of the mean matched anchor (long files: which segment)
    share: float = 0.0  # votes / the library file's pairs: how the candidates of a second are ranked


@dataclass
class LandmarkIndex:
    """Every library file's peak pairs, sorted by (db, dt) for the tolerant lookup."""

    files: list[str] = field(default_factory=list)
    peaks: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _table: tuple[np.ndarray, ...] | None = None
    _pairs: np.ndarray | None = None  # each file's number of pairs, by its index in `files`

    def refresh(self, library_files: Iterable[tuple[str, str]], cache: Path | None = None) -> int:
        """Bring the index to the library's files [(file id, path)]: peaks of new files computed
        (or read from `cache`), of removed ones dropped. Returns how many files were computed."""
        from .audio import AudioError, load_audio

        wanted = dict(library_files)
        if set(wanted) == set(self.peaks) and self._table is not None:
            return 0
        stored = _read_cache(cache) if cache is not None and not self.peaks else {}
        made = 0
        fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for fid, path in wanted.items():
            got = self.peaks.get(fid) or stored.get(fid)
            if got is None:
                try:
                    got = peaks(warped.logspec(load_audio(Path(path), warped.RATE).samples))
                except (AudioError, OSError):
                    got = (np.zeros(0, np.int32), np.zeros(0, np.int32))
                made += 1
            fresh[fid] = got
        self.peaks = fresh
        self.files = list(fresh)
        self._build()
        if cache is not None and (made or set(stored) != set(fresh)):
            _write_cache(cache, fresh)
        return made

    def _build(self) -> None:
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        counts = np.zeros(len(self.files), np.int64)
        for i, fid in enumerate(self.files):
            t1, b1, dt, db = pairs(*self.peaks[fid])
            counts[i] = len(t1)
            for c, a in zip(cols, (np.full(len(t1), i, np.int32), t1, b1, dt, db)):
                c.append(a)
        self._pairs = counts
        if not self.files:
            self._table = tuple(np.zeros(0, np.int32) for _ in range(5)) + (np.zeros(0, np.int64),)
            return
        f, t1, b1, dt, db = (np.concatenate(c) for c in cols)
        key = _key(dt, db)
        order = np.argsort(key, kind="stable")
        self._table = (f[order], t1[order], b1[order], dt[order], db[order], key[order])

    def candidates(self, feats: np.ndarray, offset: float, start: float, end: float) -> list[Candidate]:
        """Library sounds whose peak pairs line up in `feats` (log-frequency features beginning
        at `offset` seconds), with an onset in [start, end), most votes first."""
        if self._table is None or not len(self._table[0]):
            return []
        lf, lt, lb, ldt, _, lkey = self._table
        rt, rb, rdt, rdb = pairs(*peaks(feats))
        # votes are counted chunk by chunk (a recording pair's matches never span two chunks), so
        # only the counts, not every match, of a whole block are held at once
        part_keys, part_counts, part_libs = [], [], []
        for c in range(0, len(rt), QUERY_CHUNK):
            t1, b1, dt, db = (a[c : c + QUERY_CHUNK] for a in (rt, rb, rdt, rdb))
            lo = np.searchsorted(lkey, _key(np.ceil(dt / DT_RATIO[1]).astype(np.int64), db), "left")
            hi = np.searchsorted(lkey, _key(np.floor(dt / DT_RATIO[0]).astype(np.int64), db), "right")
            n = np.maximum(hi - lo, 0)
            if not n.sum():
                continue
            q = np.repeat(np.arange(len(t1)), n)
            rows = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
            shift = b1[q] - lb[rows]
            ok = np.abs(shift) <= MAX_SHIFT
            q, rows, shift = q[ok], rows[ok], shift[ok]
            # onset at the original speed: at another speed an anchor late in the sound drifts by
            # up to a tenth of its time, which the bins (and their neighbours) absorb
            onset = t1[q].astype(np.int64) - lt[rows]
            cell = lf[rows].astype(np.int64) * _SHIFTS + (shift + MAX_SHIFT)
            key = cell * _BINS + (onset // VOTE_BIN + _BINS // 2)
            # one vote per recording pair and (file, pitch shift, onset bin)
            _, first = np.unique(key * (len(t1) + 1) + q, return_index=True)
            uk, inv, count = np.unique(key[first], return_inverse=True, return_counts=True)
            part_keys.append(uk)
            part_counts.append(count)
            part_libs.append(np.bincount(inv, weights=lt[rows][first], minlength=len(uk)))
        if not part_keys:
            return []
        uk, inv = np.unique(np.concatenate(part_keys), return_inverse=True)
        count = np.bincount(inv, weights=np.concatenate(part_counts), minlength=len(uk)).astype(np.int64)
        lib_mean = np.bincount(inv, weights=np.concatenate(part_libs), minlength=len(uk)) / count
        where = {int(k): i for i, k in enumerate(uk)}
        near = [ds * _BINS + db for ds in (-1, 0, 1) for db in (-1, 0, 1)]  # a tape speed's shift falls between bands
        best: dict[tuple[int, int], Candidate] = {}
        seen: set[int] = set()
        for i in np.argsort(-count, kind="stable"):
            if 9 * count[i] < MIN_VOTES:
                break  # sorted by count: no cell left can reach MIN_VOTES with its neighbours
            k = int(uk[i])
            if k in seen:
                continue
            total = int(sum(count[where[k + d]] for d in near if k + d in where))
            if total < MIN_VOTES:
                continue
            seen.update(k + d for d in near)
            fidx, b = k // _BINS // _SHIFTS, k % _BINS - _BINS // 2
            onset = offset + b * VOTE_BIN / FPS
            if not start - VOTE_BIN / FPS <= onset < end:
                continue
            c = Candidate(self.files[fidx], float(onset), total, float(lib_mean[i] / FPS),
                          total / max(1, int(self._pairs[fidx])))
            if (fidx, b) not in best or best[(fidx, b)].votes < total:
                best[(fidx, b)] = c
        out: list[Candidate] = []
        taken: dict[int, int] = {}
        # the few of each second with the largest share (see the module's docstring): a file's
        # votes depend only on the audio around its onset, so the live monitor, which sees a few
        # seconds at a time, proposes what scan does
        for c in sorted(best.values(), key=lambda c: (-c.share, -c.votes, c.onset)):
            second = int(c.onset)
            if taken.get(second, 0) < PER_SECOND:
                taken[second] = taken.get(second, 0) + 1
                out.append(c)
        return out


_BINS = 1 << 20  # onset bins per file in the vote key (centred: onsets may precede the features)
_SHIFTS = 2 * MAX_SHIFT + 1


def cache_path(data_dir: Path, collection: str) -> Path:
    return Path(data_dir) / "landmarks" / f"{collection}.v{VERSION}.npz"


def _read_cache(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, counts, t, b = list(z["ids"]), z["counts"], z["t"], z["b"]
    except (OSError, ValueError, KeyError):
        return {}
    ends = np.cumsum(counts)
    return {str(fid): (t[e - n : e], b[e - n : e]) for fid, n, e in zip(ids, counts, ends)}


def _write_cache(path: Path, peaks_by_file: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Atomically (a temp file renamed): concurrent scans never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = list(peaks_by_file)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    except OSError:
        return  # a read-only data dir: the index is rebuilt by the next process
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, ids=np.array(ids, dtype=str), counts=np.array([len(peaks_by_file[i][0]) for i in ids], np.int64),
                     t=np.concatenate([peaks_by_file[i][0] for i in ids] or [np.zeros(0, np.int32)]),
                     b=np.concatenate([peaks_by_file[i][1] for i in ids] or [np.zeros(0, np.int32)]))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # a full disk: no half-written file left behind


class LandmarkStage:
    """The landmark candidate stage of one Library's scans: the index kept up to date with the
    library, and its candidates turned into the verifier's proposals (scan.Scanner.verify)."""

    def __init__(self, library):
        self.library = library
        self.index = LandmarkIndex()
        self.segments: dict[str, list[tuple[float, float]]] = {}  # file id: its rows' (seg_start, seg_end)
        self._lock = threading.Lock()

    def refresh(self) -> int:
        """Follow the library (files added or removed since the last scan); files computed. One
        refresh at a time: the app's start-up warming, a scan and a live session may all ask at
        once, and the later ones should find the index built, not build it again beside it."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        segs: dict[str, list[tuple[float, float]]] = {}
        paths: dict[str, str] = {}
        for r in self.library.store.iterate(("file_id", "path", "seg_start", "seg_end"), batch=5000, files_only=False):
            segs.setdefault(r["file_id"], []).append((float(r["seg_start"]), float(r["seg_end"])))
            paths[r["file_id"]] = r["path"]
        self.segments = segs
        lib = self.library
        return self.index.refresh(paths.items(), cache_path(lib.settings.data_dir, lib.collection))

    def propose(self, samples: np.ndarray, feats, offset: float, start: float, end: float,
                proposals: dict, result) -> None:
        """Add the landmark candidates with an onset in [start, end) to `proposals` ({(file id,
        segment start, segment end): windows}, as scan.Scanner.propose makes them)."""
        spec = feats.feats if isinstance(feats, warped.Target) else warped.logspec(samples)
        for c in self.index.candidates(spec, offset, start, end):
            rows = self.segments.get(c.file_id)
            if not rows:
                continue
            seg = min(rows, key=lambda r: abs((r[0] + r[1]) / 2 - c.lib_time) if r[0] <= c.lib_time <= r[1] else 1e9 + r[0])
            at = c.onset + seg[0]
            proposals.setdefault((c.file_id, seg[0], seg[1]), []).append((max(0.0, at - 0.3), at + 1.0))
            result.landmarks += 1
