"""Command line: `python -m search_core index|search|scan|find|dupes|stats|delete|drop|eval`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .appclient import AppError
from .appfile import APP_FILE
from .audio import AudioError
from .embedders import MODEL_NAMES, ModelUnavailable
from .indexer import index_summary
from .labels import Suggestion
from .search import RESULT_COLUMNS, tags_text
from .settings import Settings
from .store import LibraryLocked, StoreError


def _settings(args) -> Settings:
    overrides = {}
    if getattr(args, "uri", None):
        overrides["milvus_uri"] = args.uri
    if getattr(args, "model", None):
        overrides["model"] = args.model
    return Settings.from_env(**overrides)


def _library(args):
    from .library import Library

    return Library(_settings(args), collection=getattr(args, "collection", None))


def _runner(args):
    """Where the command runs: in this process on the library, or through the running app that
    holds the library file (Milvus Lite lets one process open it), or an app named by --app."""
    from .appclient import AppClient
    from .operations import Runner
    from .store import lite_lock_held

    settings = _settings(args)
    url = getattr(args, "app", None) or settings.app_url
    if url:
        app = AppClient.at(url, settings)
    elif settings.is_lite and lite_lock_held(settings.uri):
        app = AppClient.for_library(settings)
        if app is None:
            raise LibraryLocked(settings.uri)
    else:
        return Runner(_library(args))
    model, collection = getattr(args, "model", None), getattr(args, "collection", None)
    if model not in (None, "auto", app.model) or collection not in (None, app.collection):
        asked = f"collection {collection}" if collection not in (None, app.collection) else f"model {model}"
        raise AppError(f"The app at {app.url} serves {app.collection} (model {app.model}), not {asked}. "
                       "Stop the app to work on another collection of its library file, or start an app for it.")
    return app


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", desc=desc, file=sys.stderr)

    def update(done: int, total: int, name: str) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.n = done
        bar.set_postfix_str(name[:30], refresh=True)

    return bar, update


def _header(run) -> str:
    where = run.where()
    return f"model: {run.model}  collection: {run.collection}" + (f"  ({where})" if where else "")


def cmd_index(args) -> int:
    from .indexer import Shard

    shard = Shard.parse(args.shard) if args.shard else None
    run = _runner(args)
    if shard is not None and not hasattr(run, "lib"):
        raise AppError("--shard splits a folder between indexers that each write to a Milvus server (MILVUS_URI); "
                       "through a running app there is one writer: index without --shard.")
    print(_header(run), file=sys.stderr)
    if run.note:
        print(run.note, file=sys.stderr)
    bar, update = _progress_bar("indexing" if shard is None else f"indexing shard {shard}")
    try:
        out = run.index(args.paths, args.label, progress=update, **({"shard": shard} if shard else {}))
    finally:
        bar.close()
    if args.json:
        print(json.dumps(out))
    else:
        print(index_summary(out))
        print(f"library now holds {run.count()} sounds")
    return 0


def cmd_search(args) -> int:
    run = _runner(args)
    out = run.search(args.file, args.id, args.top_k, args.label, args.max_duration)
    if args.json:
        print(json.dumps(out))
        return 0
    print(_header(run))
    sug = out["suggested_label"]
    if sug:
        print(f"{Suggestion(**sug).describe()} (confidence {sug['confidence']:.2f})")
    if out.get("query_tags"):
        print(f"the model hears: {tags_text(out['query_tags'])}")
    if not out["results"]:
        print("no results: the library is empty (index some sounds first)" if run.count() == 0 else "no results")
    else:
        table = pd.DataFrame(out["results"], columns=RESULT_COLUMNS).drop(columns=["path"])
        table["tags"] = [tags_text(t, 3) if isinstance(t, list) else "" for t in table["tags"]]
        print(table.drop(columns=[] if table["tags"].any() else ["tags"]).to_string(index=False))
    return 0


def cmd_dupes(args) -> int:
    run = _runner(args)
    bar, update = _progress_bar("comparing")
    try:
        out = run.dupes(args.threshold, args.delete_copies, progress=lambda done, total, _: update(done, total, "candidate pairs"))
    finally:
        bar.close()
    unreadable = out.pop("unreadable", [])
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{_header(run)}  threshold: {out['threshold']}")
        if not out["groups"]:
            print(f"no near-duplicates among {out['files']} files")
        for n, g in enumerate(out["groups"], 1):
            print(f"group {n} (score {g['score']:.2f}):")
            for k, it in enumerate(g["items"]):
                keep = "keep " if k == 0 else "copy "
                print(f"  {keep}{it['name']}  ({it['label']}, {float(it['duration']):.2f} s, {it['sample_rate']} Hz)  {it['id']}")
        for c in out.get("contained", []):
            print(f"contained (score {c['score']:.2f}): {c['clip']['name']} is inside {c['within']['name']} at {c['offset']:.2f} s")
        print(f"{len(out['groups'])} groups among {out['files']} files; {out['candidate_pairs']} candidate pairs compared in {out['seconds']:.1f} s")
        if args.delete_copies:
            deleted = out["deleted"]
            print(f"deleted {len(deleted)} copies (kept the first of each group)" + (": " + ", ".join(deleted) if deleted else ""))
    if unreadable:
        print(f"warning: {len(unreadable)} files could not be read to compare them: " + ", ".join(unreadable[:5]), file=sys.stderr)
    return 0


def _seconds_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=0, unit="s", desc=desc, file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")

    def update(done: float, total: float) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def _change(d: dict) -> str:
    """How the occurrence differs from the library sound, where the verifier estimated it."""
    parts = []
    if d.get("speed") not in (None, 1.0):
        parts.append(f"speed {d['speed']:.2f}")
    if d.get("pitch_semitones"):
        parts.append(f"pitch {d['pitch_semitones']:+.1f} st")
    if d.get("gain_db") is not None:
        parts.append(f"gain {d['gain_db']:+.0f} dB")
    if d.get("channel"):
        parts.append(f"through {'a room' if d['channel'] == 'room' else 'the ' + d['channel'] + ' band'}")
    return f"  [{', '.join(parts)}]" if parts else ""


def cmd_scan(args) -> int:
    run = _runner(args)
    bar, update = _seconds_bar("scanning")
    try:
        out = run.scan(args.recording, args.threshold, progress=lambda done, total, _: update(done, total))
    finally:
        bar.close()
    seconds, unverifiable = out.pop("seconds"), out.pop("unverifiable")
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{_header(run)}  recording: {out['recording']} ({out['duration']:.1f} s)")
        if not out["detections"]:
            print(f"no library sound found (threshold {out['threshold']})")
        for d in out["detections"]:
            print(f"{_clock(d['start'])} - {_clock(d['end'])}  {d['score']:.2f}  {d['name']} ({d['label']}){_change(d)}")
        print(f"{len(out['detections'])} detections in {seconds:.1f} s ({seconds / max(out['duration'], 1e-9):.3f} x real time)")
    if unverifiable:
        print(f"warning: {len(unverifiable)} library files could not be read to verify them: "
              + ", ".join(unverifiable[:5]), file=sys.stderr)
    return 0


def cmd_find(args) -> int:
    from .find import find

    bar, update = _seconds_bar("searching")
    try:
        result = find(args.query, args.recording, _settings(args), threshold=args.threshold, progress=update)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"{result.query} ({result.query_duration:.2f} s) in {result.recording} ({result.duration:.1f} s):")
        if not result.matches:
            print(f"not found (threshold {result.threshold})")
        for m in result.matches:
            print(f"{_clock(m.start)} - {_clock(m.end)}  {m.score:.2f}{_change(m.change)}")
    return 0


def _clock(seconds: float) -> str:
    from .timeline import clock

    return clock(seconds, 3)


def cmd_stats(args) -> int:
    stats = _runner(args).stats()
    if args.json:
        print(json.dumps(stats))
    else:
        for key in ("model", "model_note", "inference", "collection", "uri", "count"):
            print(f"{key}: {stats[key]}")
        for label, n in stats["labels"].items():
            print(f"  {label}: {n}")
    return 0


def cmd_delete(args) -> int:
    out = _runner(args).delete(args.ids, path=str(Path(args.path).resolve()) if args.path else None)
    print(json.dumps(out) if args.json else f"deleted {out['deleted']}")
    return 0


def cmd_drop(args) -> int:
    """Drops the collection whatever it holds (also an older schema's, which cannot be opened)."""
    from .embedders import get_embedder
    from .store import Store, collection_name, lite_lock_held

    settings = _settings(args)
    if getattr(args, "app", None) or settings.app_url or (settings.is_lite and lite_lock_held(settings.uri)):
        raise AppError("drop deletes the collection under the running app, which would break it: stop the app first "
                       "(or empty the library from the app: SOUNDALIKE_ADMIN=1 enables its Clear button).")
    name = args.collection or collection_name(settings.library, get_embedder(settings).name)
    if not args.yes:
        print(f"refusing to drop {name} without --yes", file=sys.stderr)
        return 2
    n = Store.drop_collection(settings.uri, name, settings.milvus_token)
    if n is not None:
        print(f"dropped {name} ({n} sounds)")
    else:
        print(f"nothing to drop: {name} does not exist")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_models, format_table

    settings = _settings(args)
    models = args.models or None
    result = evaluate_models(args.folder, settings, models=models, progress=not args.json, queries=args.queries)
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def _eval_parser(sub) -> None:
    sp = sub.add_parser("eval", help="leave-one-out retrieval quality on a labelled folder")
    sp.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parent.parent / "sample_data"))
    sp.add_argument("--models", nargs="+", choices=MODEL_NAMES, help="models to compare (default: every available one)")
    sp.add_argument("--queries", metavar="DIR", help="search DIR's labelled clips in an index of FOLDER alone (held-out)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--uri", help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_eval)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search_core", description="Soundalike: audio similarity search.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--model", choices=("auto", *MODEL_NAMES), help="embedding model (default: $SOUNDALIKE_MODEL or auto)")
        sp.add_argument("--collection", help="Milvus collection (default: <library>__<model>)")
        sp.add_argument("--uri", help="Milvus URI (default: $MILVUS_URI or the Lite file in $SOUNDALIKE_DATA_DIR)")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.add_argument("--app", metavar="URL", help="run through the app at URL (default: $SOUNDALIKE_APP; a running app "
                        "that holds this data folder's library is found by itself)")

    sp = sub.add_parser("index", help="index audio files or folders (recursive)")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--label", help="label for every file (default: manifest.csv, else parent folder name)")
    sp.add_argument("--shard", metavar="K/N", help="index only part K of N (by content hash): run N indexers, "
                                                   "processes or machines, on the same paths into one Milvus server")
    common(sp)
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("search", help="find the sounds most similar to FILE (or to a library item: --id)")
    sp.add_argument("file", nargs="?")
    sp.add_argument("--id", help="more like this: search with this library item's stored vector (no FILE)")
    sp.add_argument("--top-k", type=int, default=5)
    sp.add_argument("--label", help="only results with this label")
    sp.add_argument("--max-duration", type=float, help="only results at most this many seconds long")
    common(sp)
    sp.set_defaults(func=cmd_search)

    from .scan import DEFAULT_THRESHOLD

    sp = sub.add_parser("scan", help="every library sound inside a long RECORDING, with times")
    sp.add_argument("recording")
    sp.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help=f"correlation a detection needs, 0-1 (default {DEFAULT_THRESHOLD}; lower finds more, with more false detections)")
    common(sp)
    sp.set_defaults(func=cmd_scan)

    from .monitor.command import add_parser as add_monitor

    add_monitor(sub, _library)

    sp = sub.add_parser("find", help="where QUERY occurs in a RECORDING (no library needed)")
    sp.add_argument("query")
    sp.add_argument("--in", dest="recording", required=True, metavar="RECORDING")
    sp.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"correlation a match needs (default {DEFAULT_THRESHOLD})")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.set_defaults(func=cmd_find)

    from .dupes import DEFAULT_THRESHOLD as DUPES_THRESHOLD

    sp = sub.add_parser("dupes", help="groups of library files that are the same sound in different versions")
    sp.add_argument("--threshold", type=float, default=DUPES_THRESHOLD,
                    help=f"waveform correlation two copies need, 0-1 (default {DUPES_THRESHOLD})")
    sp.add_argument("--delete-copies", action="store_true", help="delete every copy but the first (kept) file of each group")
    common(sp)
    sp.set_defaults(func=cmd_dupes)

    sp = sub.add_parser("stats", help="model, collection, count and per-label counts")
    common(sp)
    sp.set_defaults(func=cmd_stats)

    sp = sub.add_parser("delete", help="delete entries by id or by file path")
    sp.add_argument("ids", nargs="*")
    sp.add_argument("--path", help="delete every entry indexed from this file")
    common(sp)
    sp.set_defaults(func=cmd_delete)

    sp = sub.add_parser("drop", help="drop the whole collection")
    sp.add_argument("--yes", action="store_true", help="really drop it")
    common(sp)
    sp.set_defaults(func=cmd_drop)

    _eval_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LibraryLocked as exc:
        print(f"error: {exc}\nNo running app was found serving it (an app writes {APP_FILE} in its data folder). "
              "If a command is still working on it, wait for it to finish; if an app serves it, pass its URL with --app.",
              file=sys.stderr)
        return 1
    except (AudioError, ModelUnavailable, StoreError, AppError, ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 1
