"""The Lite search mirror kept on disk: a restart reads it back instead of every vector from
Milvus, and a copy that does not match the collection is detected and rebuilt, never trusted."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from search_core.store.mirror import VectorMirror
from search_core.store import Record, Store

from .conftest import REPO


def rec(i: int, vec) -> Record:
    return Record(f"id{i}", vec, f"/lib/{i}.wav", f"clip{i}", "ab"[i % 2], 1.0, 22050, time.time())


def unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def lib(tmp_path):
    """A Lite library of 200 vectors, closed (its mirror saved); yields (uri, vectors)."""
    uri = str(tmp_path / "s.db")
    x = unit(200)
    Store(uri, "c", "m", 16).upsert([rec(i, x[i]) for i in range(200)])
    Store.close_all()
    yield uri, x
    Store.close_all()


def reopen(uri: str) -> tuple[Store, VectorMirror]:
    store = Store(uri, "c", "m", 16)
    store.search(np.ones(16, np.float32), 1)  # the first search loads the mirror
    return store, Store._mirrors[(uri, "c")]


def snapshot(uri: str) -> Path:
    return Path(f"{uri}.mirror") / "c.npz"


def exact_top(store: Store, x: np.ndarray, q: np.ndarray, k: int = 5) -> None:
    """The store's answer equals numpy's over the vectors Milvus holds."""
    truth = [f"id{i}" for i in np.argsort(-(x @ q))[:k]]
    assert [h.id for h in store.search(q, k)] == truth


def test_a_reopened_library_reads_its_saved_mirror(lib):
    uri, x = lib
    assert snapshot(uri).is_file()
    store, mirror = reopen(uri)
    assert mirror.saved_generation == mirror.generation  # came from disk, unchanged
    assert len(mirror) == 200
    for q in x[:5]:
        exact_top(store, x, q)


def test_every_write_removes_the_copy_first_and_a_clean_close_saves_it_again(lib):
    uri, x = lib
    store, _ = reopen(uri)
    y = unit(3, seed=9)
    store.upsert([rec(i, y[i]) for i in range(3)])  # replaces id0..id2
    assert not snapshot(uri).exists()  # a crash now would leave no stale copy
    store.delete(["id5"])
    Store.close_all()
    assert snapshot(uri).is_file()
    store, mirror = reopen(uri)
    assert mirror.saved_generation == mirror.generation and len(mirror) == 199
    assert store.search(y[1], 1)[0].id == "id1" and store.search(y[1], 1)[0].score == pytest.approx(1.0, abs=1e-4)
    assert "id5" not in {h.id for h in store.search(x[5], 5)}


def test_a_stale_copy_is_detected_and_rebuilt(lib, tmp_path):
    uri, x = lib
    old = snapshot(uri).read_bytes()
    store, _ = reopen(uri)
    store.delete(["id7"])
    Store.close_all()
    snapshot(uri).write_bytes(old)  # a copy from before the delete (e.g. put back from a backup)
    store, mirror = reopen(uri)
    assert mirror.saved_generation == -1  # read from Milvus instead
    assert len(mirror) == 199 and "id7" not in {h.id for h in store.search(x[7], 3)}


def test_a_copy_with_other_vectors_but_the_same_count_is_not_trusted(lib):
    uri, x = lib
    fake = VectorMirror(16)
    fake.upsert([f"id{i}#0" for i in range(200)], unit(200, seed=5), [f"id{i}" for i in range(200)])
    assert fake.save(snapshot(uri), {"collection": "c", "model": "m", "schema": "2"})
    store, mirror = reopen(uri)
    assert mirror.saved_generation == -1
    for q in x[:3]:
        exact_top(store, x, q)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_copy_is_rebuilt(lib, damage):
    uri, x = lib
    path = snapshot(uri)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00" * 4096 + data[4096:], "empty": b""}[damage])
    store, mirror = reopen(uri)
    assert mirror.saved_generation == -1 and len(mirror) == 200
    exact_top(store, x, x[3])
    Store.close_all()
    assert VectorMirror.load(path, 16)[1]["rows"] == 200  # saved again, whole


def test_a_process_killed_mid_write_leaves_no_copy_to_trust(lib):
    uri, x = lib
    code = (f"import numpy as np, os, time; from search_core.store import Store, Record; s = Store({uri!r}, 'c', 'm', 16);"
            "v = np.eye(16, dtype=np.float32)[3];"
            "s.upsert([Record('new', v, '/lib/new.wav', 'new', 'a', 1.0, 22050, time.time())]); os._exit(0)")  # no atexit, no close
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
    assert not snapshot(uri).exists()
    store, mirror = reopen(uri)
    assert mirror.saved_generation == -1 and len(mirror) == 201
    assert store.search(np.eye(16, dtype=np.float32)[3], 1)[0].id == "new"


def test_a_save_that_races_a_write_is_dropped():
    m = VectorMirror(4)
    m.upsert(["a"], np.eye(4, dtype=np.float32)[:1])
    generation = m.generation

    class Racing(dict):  # a write lands after the rows were copied, while the file is written
        def __init__(self):
            super().__init__(collection="c")

        def keys(self):
            m.upsert(["b"], np.eye(4, dtype=np.float32)[1:2])
            return super().keys()

        __iter__ = lambda self: iter(self.keys())  # noqa: E731  (so that {**meta} asks keys())

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.npz"
        assert not m.save(path, Racing()) and not path.exists() and m.generation > generation
        assert not list(Path(d).iterdir())  # no temp file left behind
        assert m.save(path, {"collection": "c"}) and VectorMirror.load(path, 4)[1]["rows"] == 2


def test_a_write_before_any_search_keeps_the_saved_copy_in_step(lib):
    """`index` or `delete` from the CLI never searches: the saved copy is loaded, written, saved."""
    uri, x = lib
    store = Store(uri, "c", "m", 16)
    assert (uri, "c") not in Store._mirrors
    store.delete(["id9"])
    assert not snapshot(uri).exists()
    Store.close_all()
    store, mirror = reopen(uri)
    assert mirror.saved_generation == mirror.generation and len(mirror) == 199
    assert "id9" not in {h.id for h in store.search(x[9], 5)}
