"""`python -m benchmarks --smoke` runs end to end (tiny sizes). Timings are not asserted here —
targets live in the benchmark's own output — but its correctness is: the Lite search mirror must be
exact (recall@10 = 1) and nothing may fail."""
import json
import subprocess
import sys

from .conftest import REPO


def test_benchmark_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "## latency" in r.stdout and "## scale" in r.stdout
    result = json.loads(out.read_text())
    assert {"latency", "indexing", "scale", "memory", "scan"} <= set(result)
    assert "## scan quality" in r.stdout
    scan = result["scan"]
    assert scan["inserted"] == 4 and len(scan["quality"]) == 5 and scan["real_time_factor_median"] > 0
    assert all(row["recall@10"] == 1.0 for row in result["scale"])
    assert all(row["failed"] == 0 for row in result["indexing"])
    assert all(row["e2e_p50_ms"] >= row["forward_p50_ms"] > 0 for row in result["latency"])
    assert all("error" not in row and row["peak_mb"] >= row["loaded_mb"] > 0 for row in result["memory"])
    # a reopened library reads its saved mirror; without it, it reads every vector back (and still answers)
    assert "## restart" in r.stdout
    assert all(row["from_saved_copy"] and not row["without_copy_from_saved"] for row in result["restart"])
    # the map: t-SNE keeps category neighbourhoods better than PCA, and a restart reads the saved layout
    assert "## map quality (bundled set)" in r.stdout and "## map at scale" in r.stdout
    quality = {row["layout"]: row["knn5_same_category"] for row in result["map"]["quality"]}
    assert quality["t-SNE (the app's map)"] > quality["PCA"]
    (scale,) = result["map"]["scale"]
    assert scale["sounds"] == 300 and scale["layout"] == "tsne" and scale["restart_read_saved"]
    # clients searching at once over HTTP: every search answered 200
    (load,) = result["load"]
    assert load["clients"] == 8 and load["codes"] == {"200": 24} and load["errors_5xx"] == 0


def test_server_benchmark_smoke_run(tmp_path, milvus_server):
    """The scale-out section on the tests' Milvus server (2,000 vectors): the project's HNSW index
    is built, searched through Store, and compared with exact search."""
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--only", "server", "--server-uri", milvus_server,
                        "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "## server" in r.stdout
    rows = {row["step"]: row for row in json.loads(out.read_text())["server"]}
    assert rows["insert"]["per_s"] > 0 and rows["index"]["seconds"] >= 0 and rows["load"]["seconds"] >= 0
    searched = [row for step, row in rows.items() if step.startswith("search")]
    assert len(searched) == 4 and all(row["p50_ms"] > 0 for row in searched)
    # 2,000 vectors: HNSW finds nearly all true neighbours (the 1M figures are in the README)
    assert all(row["recall_at_10"] >= 0.9 for row in searched), searched


def test_wild_benchmark_smoke_run(tmp_path):
    """The wild section end to end at tiny size: one tuning and one report recording of a minute,
    scored per condition, with the distractors (sounds not in the library) held apart."""
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--only", "wild", "--json", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "## wild scan, tune seeds" in r.stdout and "## wild scan, report seeds" in r.stdout
    wild = json.loads(out.read_text())["wild"]
    assert wild["library"] + wild["distractor_pool"] == 207
    for part in ("tune", "report"):
        for q in wild[part]["quality"]:
            assert set(q["recall_by_condition"]) >= {"clean", "speed_0.95", "pitch_+2", "telephone", "overlap"}
            assert q["inserted"] > 0 and q["false_per_hour"] >= 0
