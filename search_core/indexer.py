"""Files -> embeddings -> store, idempotently.

Each file is identified by the sha256 of its bytes: unchanged files are skipped before any
decoding, a file whose content changed replaces its old entry (the old one is deleted only after
the new one is stored, so a failure never loses data), and a bad file is reported and skipped.
Decoding runs in a small thread pool while the model embeds the previous batch.
"""
from __future__ import annotations

import csv
import hashlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .audio import AUDIO_EXTENSIONS, AudioError, load_audio, require_sound
from .embedders.base import Embedder
from .store import Record, Store

Progress = Callable[[int, int, str], None]  # (done, total, current file name)


@dataclass(frozen=True)
class Shard:
    """Part K of N of a folder, by content hash: N indexers (processes or machines) given the same
    paths and shards 1/N ... N/N each embed a disjoint part, and together every file once. A file's
    shard depends on its bytes only, so a killed indexer run again takes the same files (and skips
    those it stored)."""

    k: int
    n: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            k, n = (int(x) for x in str(text).split("/"))
        except ValueError:
            raise ValueError(f"--shard takes K/N (e.g. 1/4), not {text!r}") from None
        if not 1 <= k <= n:
            raise ValueError(f"--shard K/N needs 1 <= K <= N (got {k}/{n})")
        return cls(k, n)

    def holds(self, file_id: str) -> bool:
        return int(file_id[:16], 16) % self.n == self.k - 1

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    seconds: float = 0.0
    stored: list[tuple[str, str]] = field(default_factory=list)  # (file id, label) of added/updated files
    suggestions: list[dict] = field(default_factory=list)  # {id, name, suggested_label} for unlabelled files
    other_shards: int = 0  # files left to the other indexers (--shard)

    def as_dict(self) -> dict:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "failed": [{"file": f, "reason": r} for f, r in self.failed],
            "seconds": round(self.seconds, 2),
            "suggestions": self.suggestions,
            **({"other_shards": self.other_shards} if self.other_shards else {}),
        }

    def summary(self) -> str:
        return index_summary(self.as_dict())


def index_summary(report: dict) -> str:
    """A report (IndexReport.as_dict(), here or from a running app) in a few lines for people."""
    failed = report["failed"]
    text = (
        f"added {report['added']}, updated {report['updated']}, unchanged {report['unchanged']}, "
        f"failed {len(failed)} in {report['seconds']:.1f} s"
    )
    if report.get("other_shards"):
        text += f"; {report['other_shards']} left to the other shards"
    for f in failed[:20]:
        text += f"\n  failed: {f['file']}: {f['reason']}"
    if len(failed) > 20:
        text += f"\n  ... and {len(failed) - 20} more failures"
    for s in report["suggestions"][:20]:
        sug = s["suggested_label"]
        text += f"\n  {s['name']}: no label; " + (
            f"sounds like {sug['label']} ({sug['votes']} of {sug['neighbours']} neighbours)" if sug else "no suggestion (its neighbours disagree or are unlabelled)")
    return text


@dataclass
class Item:
    path: Path
    label: str
    name: str = ""  # display name; defaults to the file's stem
    id: str = ""
    replaces: list[str] = field(default_factory=list)


@dataclass
class Decoded:
    """A file as the decode workers hand it over: what its records need, and its pieces already
    through the model's front end (Embedder.prepare)."""

    duration: float
    source_rate: int
    spans: list[tuple[float, float]]
    prepared: list


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    """manifest.csv (file,label,...) -> {relative file path: label}."""
    path = folder / "manifest.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["file"].strip(): row["label"].strip() for row in csv.DictReader(f) if row.get("file") and row.get("label")}


def collect(paths: Iterable[str | Path], default_label: str | None = None) -> tuple[list[Item], list[tuple[str, str]]]:
    """Expand folders (recursively, audio extensions only) and label every file.

    Labels: manifest.csv in the file's folder or an ancestor up to the given root, else the
    parent folder's name (or `default_label` when given).
    """
    items: list[Item] = []
    missing: list[tuple[str, str]] = []
    manifests: dict[Path, dict[str, str]] = {}

    def label_for(file: Path, root: Path) -> str:
        if default_label:
            return default_label
        d = file.parent
        while True:
            if d not in manifests:
                manifests[d] = read_manifest(d)
            rel = file.relative_to(d).as_posix()
            if rel in manifests[d]:
                return manifests[d][rel]
            if d == root or d.parent == d:
                break
            d = d.parent
        return file.parent.name or "unlabelled"

    for p in paths:
        p = Path(p).expanduser().resolve()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    items.append(Item(f, label_for(f, p)))
        elif p.is_file():
            items.append(Item(p, label_for(p, p.parent)))
        else:
            missing.append((str(p), "no such file or folder"))
    return items, missing


class Indexer:
    def __init__(self, store: Store, embedder: Embedder, settings, *, batch_size: int = 8, upsert_batch: int = 64):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.batch_size = batch_size
        self.upsert_batch = upsert_batch

    def _decode(self, item: Item) -> Decoded | AudioError:
        """A file decoded, cut into the model's pieces and through its front end (in a decode
        worker, while the model embeds the batch before)."""
        try:
            clip = require_sound(load_audio(
                item.path,
                self.embedder.sample_rate,
                max_seconds=self.settings.max_index_seconds,
                name=item.path.name,
            ))
        except AudioError as exc:
            return exc
        except Exception as exc:  # never let one file abort a run
            return AudioError(item.path.name, f"could not be decoded ({exc})")
        spans, pieces = self.embedder.pieces(clip.samples, clip.duration)
        try:
            prepared = self.embedder.prepare(pieces)
        except Exception as exc:
            return AudioError(item.path.name, f"model failed ({exc})")
        return Decoded(clip.duration, clip.source_rate, spans, prepared)

    def plan(self, items: Sequence[Item], report: IndexReport, shard: Shard | None = None) -> list[Item]:
        """Hash, drop duplicates, other shards' files and unchanged files; note which stored ids each
        file replaces."""
        todo: list[Item] = []
        seen: set[str] = set()
        for item in items:
            try:
                item.id = file_sha256(item.path)
            except OSError as exc:
                report.failed.append((item.path.name, f"cannot read file ({exc.strerror or exc})"))
                continue
            if item.id in seen:
                report.unchanged.append(str(item.path))
                continue
            seen.add(item.id)
            if shard is not None and not shard.holds(item.id):
                report.other_shards += 1
                continue
            todo.append(item)
        existing = self.store.existing_ids([i.id for i in todo])
        fresh = [item for item in todo if item.id not in existing]
        report.unchanged.extend(str(item.path) for item in todo if item.id in existing)
        stored = self.store.ids_for_paths([str(item.path) for item in fresh])
        for item in fresh:
            item.replaces = [i for i in stored.get(str(item.path), []) if i != item.id]
        return fresh

    def index(
        self,
        paths: Iterable[str | Path],
        *,
        default_label: str | None = None,
        progress: Progress | None = None,
        names: dict[str, str] | None = None,
        shard: Shard | None = None,
    ) -> IndexReport:
        """`names` maps a file's resolved path to the name shown for it (uploads keep the
        visitor's file name while stored under a generated one); `shard`: this indexer's part."""
        start = time.perf_counter()
        report = IndexReport()
        items, missing = collect(paths, default_label)
        for item in items:
            item.name = (names or {}).get(str(item.path), item.path.stem)
        report.failed.extend(missing)
        todo = self.plan(items, report, shard)
        if progress:
            progress(0, len(todo), "")
        pending: list[Record] = []
        replaced: list[tuple[Item, list[str]]] = []
        batch: list[tuple[Item, Decoded]] = []
        for done, (item, decoded) in enumerate(self._decoded(todo), 1):
            if isinstance(decoded, AudioError):
                report.failed.append((item.path.name, decoded.reason))
            else:
                batch.append((item, decoded))
            if len(batch) >= self.batch_size or (done == len(todo) and batch):
                pending += self._records(batch, report, replaced)
                batch = []
                if len(pending) >= self.upsert_batch or done == len(todo):
                    self._flush(pending, replaced)
            if progress:
                progress(done, len(todo), item.path.name)
        self._flush(pending, replaced)
        self.store.settle()  # what this run wrote is visible to every reader once it returns
        report.seconds = time.perf_counter() - start
        return report

    def _decoded(self, todo: list[Item]):
        """(item, clip or AudioError) in order, decoded ahead by a pool of workers."""
        workers = max(1, int(self.settings.decode_workers))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            queue: deque = deque()
            it = iter(todo)
            lookahead = max(2 * self.batch_size, workers)
            for item in it:
                queue.append((item, pool.submit(self._decode, item)))
                if len(queue) >= lookahead:
                    break
            while queue:
                item, fut = queue.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    queue.append((nxt, pool.submit(self._decode, nxt)))
                yield item, fut.result()

    def _records(self, batch: list[tuple[Item, Decoded]], report: IndexReport, replaced: list[tuple[Item, list[str]]]) -> list[Record]:
        """A batch of decoded files through the model together: their records (a model failure
        fails the batch's files, reported, and the run goes on)."""
        # Long files became overlapping windows; every piece of the batch goes through the model together.
        try:
            vectors, probs = self.embedder.embed_prepared([p for _, d in batch for p in d.prepared])
        except Exception as exc:
            for item, _ in batch:
                report.failed.append((item.path.name, f"model failed ({exc})"))
            return []
        now = time.time()
        at = 0
        records = []
        for item, decoded in batch:
            spans = decoded.spans
            vecs = vectors[at : at + len(spans)]
            # the file's tags: its segments' probabilities, weighted by their length
            tags = None if probs is None else self.embedder.top_tags(
                np.average(probs[at : at + len(spans)], axis=0, weights=[max(e - s, 1e-3) for s, e in spans]))
            at += len(spans)
            records.append(Record(item.id, vecs, str(item.path), item.name, item.label, decoded.duration, decoded.source_rate, now, spans, tags))
            (report.updated if item.replaces else report.added).append(str(item.path))
            report.stored.append((item.id, item.label))
            if item.replaces:
                replaced.append((item, item.replaces))
        return records

    def _flush(self, pending: list[Record], replaced: list[tuple[Item, list[str]]]) -> None:
        """Store what is pending; old versions of replaced files go only once their replacement is stored."""
        if pending:
            self.store.upsert(pending)
            pending.clear()
        for _, old in replaced:
            self.store.delete(old, settle=False)
        replaced.clear()
