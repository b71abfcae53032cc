import time

import numpy as np
import pytest

from search_core.store import Record, Store, StoreError, build_filter, collection_name


def rec(i: int, vec, label="a", path=None, duration=1.0) -> Record:
    return Record(f"id{i}", vec, path or f"/lib/{i}.wav", f"clip{i}", label, duration, 22050, time.time())


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path, vectors):
    s = Store(str(tmp_path / "t.db"), "lib__m", "m", 8)
    labels = ["a", "a", "b", 'q"uote', "b", "a"]
    s.upsert([rec(i, vectors[i], labels[i], duration=float(i)) for i in range(6)])
    return s


def test_round_trip_search_count_get(store, vectors):
    assert store.count() == 6
    hits = store.search(vectors[2], 3)
    assert [h.id for h in hits][0] == "id2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score
    got = store.get(["id3"])
    assert got[0]["label"] == 'q"uote' and got[0]["name"] == "clip3"


def test_filters_by_label_and_duration(store, vectors):
    assert {h.id for h in store.search(vectors[0], 10, label="b")} == {"id2", "id4"}
    assert {h.id for h in store.search(vectors[0], 10, label='q"uote')} == {"id3"}
    assert {h.id for h in store.search(vectors[0], 10, max_duration=1.5)} == {"id0", "id1"}
    assert {h.id for h in store.search(vectors[0], 10, label="a", max_duration=1.5)} == {"id0", "id1"}


def test_filter_values_cannot_inject_expressions(store, vectors):
    assert store.search(vectors[0], 10, label='a" or label != "') == []
    assert build_filter(label='x" or 1==1 or label == "') == 'label == "x\\" or 1==1 or label == \\""'


def test_upsert_same_id_replaces(store, vectors):
    store.upsert([rec(0, vectors[5], "z")])
    assert store.count() == 6
    assert store.get(["id0"])[0]["label"] == "z"


def test_delete_by_id_and_path_and_drop(store):
    assert store.delete(["id0", "missing"]) == 1
    assert store.delete(path="/lib/1.wav") == 1
    assert store.count() == 4
    assert store.ids_for_path("/lib/2.wav") == ["id2"]
    store.drop()
    assert not store.client.has_collection("lib__m")


def test_reopen_after_close_keeps_data_and_searches(tmp_path, store, vectors):
    Store.close_all()
    again = Store(str(tmp_path / "t.db"), "lib__m", "m", 8)
    assert again.count() == 6
    assert again.search(vectors[4], 1)[0].id == "id4"
    assert again.label_counts() == {"a": 3, "b": 2, 'q"uote': 1}


def test_model_or_dim_mismatch_is_refused(tmp_path, store):
    with pytest.raises(StoreError, match="holds m vectors"):
        Store(str(tmp_path / "t.db"), "lib__m", "other-model", 8)
    with pytest.raises(StoreError, match="dim 8"):
        Store(str(tmp_path / "t.db"), "lib__m", "m", 16)


def test_bad_vectors_are_refused(store):
    with pytest.raises(StoreError):
        store.upsert([rec(9, np.full(8, np.nan, np.float32))])
    with pytest.raises(StoreError):
        store.search(np.ones(4, np.float32), 3)


def test_exclude_ids_and_collection_names(store, vectors):
    hits = store.search(vectors[2], 2, exclude_ids=["id2"])
    assert "id2" not in [h.id for h in hits] and len(hits) == 2
    assert collection_name("my lib", "panns-cnn14") == "my_lib__panns_cnn14"
    assert collection_name("1x", "m")[0].isalpha()


def test_lite_mirror_agrees_with_milvus_search(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fast = Store(str(tmp_path / "m.db"), "c", "m", 16)
    slow = Store(str(tmp_path / "m.db"), "c", "m", 16, mirror=False)
    assert fast.use_mirror and not slow.use_mirror
    fast.upsert([rec(i, x[i], "ab"[i % 2], duration=float(i % 7)) for i in range(300)])

    def same(**kw):
        for q in x[:5]:
            a = [(h.id, round(h.score, 4)) for h in fast.search(q, 10, **kw)]
            b = [(h.id, round(h.score, 4)) for h in slow.search(q, 10, **kw)]
            assert a == b, (kw, a, b)

    same()
    same(label="b")
    same(max_duration=2.0, label="a")
    same(exclude_ids=["id0", "id1"])
    fast.delete([f"id{i}" for i in range(0, 300, 3)])  # deleted rows must vanish from both
    same()
    slow.upsert([rec(7, x[100], "b")])  # writes through any Store object reach the shared mirror
    same()
    Store.close_all()
    reopened = Store(str(tmp_path / "m.db"), "c", "m", 16)
    assert reopened.search(x[100], 2)[0].id in {"id7", "id100"}


def test_mirror_reuses_rows_of_deleted_ids():
    from search_core.mirror import VectorMirror

    m = VectorMirror(4)
    m.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    m.delete(["a"])
    m.upsert(["c"], np.eye(4, dtype=np.float32)[2:3])
    assert len(m) == 2 and m._mat.shape[0] >= 2
    assert [i for i, _ in m.search(np.array([0, 0, 1, 0]), 3)] == ["c", "b"]
    assert m.search(np.array([1, 0, 0, 0]), 1, exclude=["b", "c"]) == []
