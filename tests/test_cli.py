"""The CLI as a user runs it: separate processes on a Milvus Lite file, offline."""
import json
import os
import subprocess
import sys

from .conftest import REPO, SAMPLE_DATA


def run(args, tmp_path, **env):
    e = {**os.environ, "SOUNDALIKE_DATA_DIR": str(tmp_path / "data"), "SOUNDALIKE_MODEL": "aisfx", **env}
    return subprocess.run([sys.executable, "-m", "search_core", *args], cwd=REPO, env=e, capture_output=True, text=True, timeout=600)


def test_index_then_search_json_returns_the_query_first(tmp_path, sounds):
    r = run(["index", str(sounds)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "added 12" in r.stdout
    r = run(["search", str(sounds / "clicks" / "clicks_2.wav"), "--top-k", "3", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # exactly one JSON object on stdout
    assert set(out) == {"model", "collection", "query_id", "suggested_label", "results"} and out["model"] == "aisfx"
    first = out["results"][0]
    assert set(first) == {"rank", "id", "name", "label", "score", "percentile", "duration", "start", "end", "path"}  # no tags: aisfx
    assert first["name"] == "clicks_2" and first["rank"] == 1 and first["score"] > 0.999
    assert len(out["results"]) == 3
    assert out["suggested_label"]["label"] == "clicks" and 0 < out["suggested_label"]["confidence"] <= 1

    # more like this: the same contract, from a stored item, the item itself left out
    r = run(["search", "--id", first["id"], "--top-k", "2", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    more = json.loads(r.stdout)
    assert set(more) == set(out) and more["query_id"] == first["id"] and len(more["results"]) == 2
    assert first["id"] not in {h["id"] for h in more["results"]} and more["results"][0]["label"] == "clicks"
    r = run(["search", "--id", "f" * 64], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == f"error: no item with id '{'f' * 64}' in this library"

    r = run(["stats", "--json"], tmp_path)
    assert json.loads(r.stdout)["count"] == 12
    r = run(["delete", "--path", str(sounds / "clicks" / "clicks_2.wav")], tmp_path)
    assert "deleted 1" in r.stdout
    r = run(["drop"], tmp_path)
    assert r.returncode == 2 and "--yes" in r.stderr
    r = run(["drop", "--yes"], tmp_path)
    assert "dropped" in r.stdout and "11 sounds" in r.stdout


def test_bad_query_is_an_error_message_not_a_traceback(tmp_path):
    bad = tmp_path / "x.mp3"
    bad.write_text("nope")
    r = run(["search", str(bad)], tmp_path)
    assert r.returncode == 1
    # (mpg123 may print its own notes to stderr first)
    assert r.stderr.strip().splitlines()[-1].startswith("error: x.mp3: not a readable audio file")
    assert "Traceback" not in r.stderr


def _labelled_subset(folder, labels, start: int, count: int):
    """Clips start..start+count of each label of the bundled library, copied with their manifest."""
    import csv

    rows = list(csv.DictReader((SAMPLE_DATA / "manifest.csv").open()))
    keep = []
    for label in labels:
        keep += [r for r in rows if r["label"] == label][start : start + count]
    for r in keep:
        (folder / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / r["file"]).write_bytes((SAMPLE_DATA / r["file"]).read_bytes())
    with (folder / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    return folder


def test_eval_compares_models_on_a_labelled_folder(tmp_path):
    # a small labelled subset of the bundled library: 3 categories x 5 clips, with its manifest
    sub = _labelled_subset(tmp_path / "subset", ("voice", "explosion", "ui_click"), 0, 5)
    r = run(["eval", str(sub), "--models", "aisfx", "mfcc", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["models"]) == {"aisfx", "mfcc"}
    for m in out["models"].values():
        assert m["clips"] == 15 and m["failed"] == 0
        assert set(m["per_label"]) == {"voice", "explosion", "ui_click"}
        for v in m["overall"].values():
            assert 0.0 <= v <= 1.0
        assert m["overall"]["p@1"] > 1 / 3  # better than chance on 3 balanced classes
        assert m["knn_accuracy"] == m["overall"]["knn_accuracy"] and m["knn_accuracy"] > 1 / 3
        assert m["classifier_accuracy"] == m["overall"]["classifier_accuracy"] and m["classifier_accuracy"] > 1 / 3


def test_eval_held_out_queries_learn_from_the_library_alone(tmp_path):
    """--queries: other clips of the same categories, searched in and classified by the library."""
    labels = ("voice", "explosion", "ui_click")
    lib = _labelled_subset(tmp_path / "lib", labels, 0, 5)
    held = _labelled_subset(tmp_path / "held", labels, 5, 3)
    r = run(["eval", str(lib), "--queries", str(held), "--models", "aisfx", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)["models"]["aisfx"]
    assert (m["clips"], m["library_clips"], m["failed"]) == (9, 15, 0)
    assert {p["name"] for p in m["predictions"]}.isdisjoint({p.name for p in lib.rglob("*.ogg")})
    assert set(m["per_label"]) == set(labels) and all(v["n"] == 3 for v in m["per_label"].values())
    for p in m["predictions"]:
        assert p["classifier"] in labels  # only the library's categories can be suggested
    assert abs(m["classifier_accuracy"] - sum(p["classifier"] == p["label"] for p in m["predictions"]) / 9) < 1e-3
    assert m["classifier_accuracy"] > 1 / 3 and m["overall"]["p@1"] > 1 / 3  # better than chance


def test_index_killed_midway_then_run_again_loses_and_duplicates_nothing(tmp_path):
    """kill -9 in the middle of `index` on a Lite file, then the same command: every file once."""
    import signal

    from .conftest import wait_for_progress, write_many

    folder = tmp_path / "many"
    write_many(folder, 200)
    err = tmp_path / "index.err"
    e = dict(os.environ, SOUNDALIKE_DATA_DIR=str(tmp_path / "data"), SOUNDALIKE_MODEL="mfcc")
    with err.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "search_core", "index", str(folder)], cwd=REPO, env=e, stderr=out, stdout=subprocess.DEVNULL)
        wait_for_progress(proc, err, 200, 130)  # two batches of 64 stored, the rest not yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = json.loads(run(["stats", "--json"], tmp_path, SOUNDALIKE_MODEL="mfcc").stdout)["count"]
    assert 0 < before < 200
    r = run(["index", str(folder), "--json"], tmp_path, SOUNDALIKE_MODEL="mfcc")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["unchanged"] == before and report["added"] == 200 - before and report["failed"] == []
    assert json.loads(run(["stats", "--json"], tmp_path, SOUNDALIKE_MODEL="mfcc").stdout)["count"] == 200
    r = run(["search", str(folder / "s123.wav"), "--top-k", "1", "--json"], tmp_path, SOUNDALIKE_MODEL="mfcc")
    assert json.loads(r.stdout)["results"][0]["name"] == "s123"
    from search_core.store import Store

    store = Store(str(tmp_path / "data" / "soundalike.db"), "library__mfcc", "mfcc", 38)
    assert store.count_segments() == 200  # one row per (short) file: nothing stored twice
    assert sorted(len(store.ids_for_path(str((folder / f"s{i:03d}.wav").resolve()))) for i in range(200)) == [1] * 200


def test_index_on_a_milvus_server_counts_what_it_wrote(tmp_path, sounds, milvus_server):
    """Read your writes on a server: the count printed right after `index` includes its writes."""
    import uuid

    env = {"MILVUS_URI": milvus_server, "SOUNDALIKE_LIBRARY": f"t{uuid.uuid4().hex[:10]}"}
    r = run(["index", str(sounds)], tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert "added 12" in r.stdout and "library now holds 12 sounds" in r.stdout
    r = run(["delete", "--path", str(sounds / "tone" / "tone_0.wav")], tmp_path, **env)
    assert r.stdout.strip() == "deleted 1"
    assert json.loads(run(["stats", "--json"], tmp_path, **env).stdout)["count"] == 11
    out = json.loads(run(["search", str(sounds / "chirp" / "chirp_1.wav"), "--json"], tmp_path, **env).stdout)
    assert out["results"][0]["name"] == "chirp_1"
    assert "dropped" in run(["drop", "--yes"], tmp_path, **env).stdout
