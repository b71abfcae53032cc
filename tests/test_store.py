import contextlib
import os
import sys
import time
import uuid

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


@pytest.fixture(params=["lite", "server"])
def store(request, tmp_path, vectors):
    """The store contract holds on both tiers: a Milvus Lite file, and a real Milvus server (HNSW)."""
    if request.param == "lite":
        uri, name = str(tmp_path / "t.db"), "lib__m"
    else:
        uri, name = request.getfixturevalue("milvus_server"), f"t_{uuid.uuid4().hex[:12]}"
    s = Store(uri, name, "m", 8)
    labels = ["a", "a", "b", 'q"uote', "b", "a"]
    s.upsert([rec(i, vectors[i], labels[i], duration=float(i)) for i in range(6)])
    yield s
    if request.param == "server":
        Store.drop_collection(uri, name)


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
    assert not store.client.has_collection(store.collection)


def test_reopen_after_close_keeps_data_and_searches(store, vectors):
    Store.close_all()
    again = Store(store.uri, store.collection, "m", 8)
    assert again.count() == 6
    assert again.search(vectors[4], 1)[0].id == "id4"
    assert again.label_counts() == {"a": 3, "b": 2, 'q"uote': 1}


def test_model_or_dim_mismatch_is_refused(store):
    with pytest.raises(StoreError, match="holds m vectors"):
        Store(store.uri, store.collection, "other-model", 8)
    with pytest.raises(StoreError, match="dim 8"):
        Store(store.uri, store.collection, "m", 16)


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
    from search_core.store.mirror import VectorMirror

    m = VectorMirror(4)
    m.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    m.delete(["a"])
    m.upsert(["c"], np.eye(4, dtype=np.float32)[2:3])
    assert len(m) == 2 and m._mat.shape[0] >= 2
    assert [h.row_id for h in m.search(np.array([0, 0, 1, 0]), 3)] == ["c", "b"]
    assert m.search(np.array([1, 0, 0, 0]), 1, exclude_files=["b", "c"]) == []


def test_mirror_groups_rows_by_file():
    from search_core.store.mirror import VectorMirror

    m = VectorMirror(4)
    eye = np.eye(4, dtype=np.float32)
    m.upsert(["f#0", "f#1", "g#0"], np.stack([eye[0], eye[1], eye[0] + 0.5 * eye[1]]), ["f", "f", "g"], [(0, 2), (1, 3), (0, 1)])
    hits = m.search(eye[1], 5)
    assert [(h.file_id, h.row_id, h.start, h.end) for h in hits] == [("f", "f#1", 1.0, 3.0), ("g", "g#0", 0.0, 1.0)]
    m.delete_files(["f"])
    assert len(m) == 1 and m.files == 1


def long_record(i: int, vecs, spans, label="long") -> Record:
    return Record(f"file{i}", vecs, f"/lib/long{i}.wav", f"long{i}", label, spans[-1][1], 44100, time.time(), spans)


def test_long_files_are_segments_and_searches_return_one_hit_per_file(store, vectors):
    rng = np.random.default_rng(5)
    segs = rng.normal(size=(4, 8)).astype(np.float32)
    segs[2] = vectors[1] + 0.01  # the third moment of the long file sounds like clip 1
    spans = [(0.0, 2.4), (1.2, 3.6), (2.4, 4.8), (3.6, 6.0)]
    store.upsert([long_record(0, segs, spans)])
    assert store.count() == 7 and store.count_segments() == 10
    hits = store.search(vectors[1], 10)
    assert len({h.id for h in hits}) == len(hits) == 7  # one hit per file, not per segment
    top = {h.id: h for h in hits}
    assert (top["file0"].start, top["file0"].end) == (2.4, 4.8)
    assert hits[1].id == "file0" or hits[0].id == "file0"
    assert store.get(["file0"])[0]["duration"] == pytest.approx(6.0)
    # stored again (same content, fewer segments): no stale segment stays; re-upsert is idempotent
    store.upsert([long_record(0, segs[:2], spans[:2])])
    store.upsert([long_record(0, segs[:2], spans[:2])])
    assert store.count() == 7 and store.count_segments() == 8
    assert store.delete(["file0"]) == 1
    assert store.count_segments() == 6 and store.search(vectors[1], 10)[0].id == "id1"


def test_mirror_and_milvus_agree_on_segments(tmp_path):
    rng = np.random.default_rng(2)
    fast = Store(str(tmp_path / "s.db"), "c", "m", 16)
    slow = Store(str(tmp_path / "s.db"), "c", "m", 16, mirror=False)
    recs = []
    for i in range(40):
        n = 1 + i % 4
        recs.append(Record(f"f{i}", rng.normal(size=(n, 16)).astype(np.float32), f"/x/{i}.wav", f"x{i}", "ab"[i % 2], float(n),
                           8000, 0.0, [(float(j), float(j) + 1.0) for j in range(n)]))
    fast.upsert(recs)
    for q in rng.normal(size=(5, 16)).astype(np.float32):
        a = [(h.id, round(h.score, 4), h.start) for h in fast.search(q, 8, label="a")]
        b = [(h.id, round(h.score, 4), h.start) for h in slow.search(q, 8, label="a")]
        assert a == b


def test_a_library_of_the_older_schema_gets_a_clear_message(tmp_path):
    from .conftest import create_schema1_collection

    uri = str(tmp_path / "old.db")
    create_schema1_collection(uri, "lib__m", "m", 8)
    with pytest.raises(StoreError, match=r"older Soundalike \(schema 1.*Re-index it.*drop --yes"):
        Store(uri, "lib__m", "m", 8)
    assert Store.drop_collection(uri, "lib__m") == 0
    assert Store(uri, "lib__m", "m", 8).count() == 0


@contextlib.contextmanager
def stderr_fd_to(path):
    """gRPC's C core logs to file descriptor 2 directly: catch it there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def wait_for_text(path, text, seconds) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return text in path.read_text(errors="replace")


def test_lite_channel_sends_no_keepalive_pings_and_heals_after_goaway(tmp_path, vectors):
    """The cause of a once-random failure, made to happen on purpose: Lite's in-process gRPC server
    answers idle keepalive pings with GOAWAY too_many_pings. A store that pings every second gets
    it within seconds and must still answer; the default store sends no pings at all."""
    uri = str(tmp_path / "ka.db")
    log = tmp_path / "grpc.log"
    with stderr_fd_to(log):
        pinging = Store(uri, "ka", "m", 8, grpc_options={"grpc.keepalive_time_ms": 1000, "grpc.keepalive_permit_without_calls": 1, "grpc.http2.max_pings_without_data": 0})
        pinging.upsert([rec(i, vectors[i]) for i in range(3)])
        saw_goaway = wait_for_text(log, "too_many_pings", 20)
    assert saw_goaway, log.read_text()[-2000:]  # the condition really happened
    assert pinging.count() == 3 and pinging.search(vectors[1], 1)[0].id == "id1"
    Store.close_all()
    quiet_log = tmp_path / "quiet.log"
    with stderr_fd_to(quiet_log):
        quiet = Store(uri, "ka", "m", 8)
        assert quiet.count() == 3
        pinged = wait_for_text(quiet_log, "too_many_pings", 8)
    assert not pinged
    assert quiet.count() == 3


def test_store_reconnects_when_its_server_restarts(tmp_path, vectors):
    from milvus_lite.server_manager import server_manager_instance

    uri = str(tmp_path / "restart.db")
    s = Store(uri, "r", "m", 8, mirror=False)
    s.upsert([rec(i, vectors[i]) for i in range(4)])
    server_manager_instance.release_server(uri)  # the server goes away under a live client
    assert s.count() == 4  # a fresh channel to a fresh server, same data
    assert s.search(vectors[2], 1)[0].id == "id2"
    s.upsert([rec(5, vectors[5])])
    assert s.count() == 5
