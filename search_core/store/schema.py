"""What a Soundalike collection looks like in Milvus: its name, fields, version and filters.

One collection per (library, model), so vectors of different models never mix; the model name, dim
and schema version are collection properties checked on open. Rows are segments: a file no longer
than its model's window is one row, a longer file one row per overlapping window (`seg_start`,
`seg_end` in seconds); `file_id` (the file's sha256) ties them together.

Filters are built here from typed values only (quoted with JSON escaping), never from raw text.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Sequence

from .connection import Connection, StoreError

SCHEMA_VERSION = "2"  # 1: one vector per file (id = sha256); 2: segments (file_id, seg, seg_start, seg_end)
ID_MAX = 80
PATH_MAX = 2048
TEXT_MAX = 512
TAGS_MAX = 1024  # a JSON list of the file's top tags
FILE_FIELDS = ["file_id", "path", "name", "label", "duration", "sample_rate", "indexed_at"]


def collection_name(library: str, model: str) -> str:
    base = re.sub(r"[^0-9a-zA-Z_]", "_", f"{library}__{model}")
    return base if base[0].isalpha() or base[0] == "_" else f"c_{base}"


def row_id(file_id: str, seg: int) -> str:
    return f"{file_id}#{seg}"


def quote(value: str) -> str:
    """A Milvus string literal for any text (JSON escaping; checked against Milvus Lite)."""
    return json.dumps(str(value), ensure_ascii=False)


def clean_text(value: str, limit: int) -> str:
    value = "".join(ch for ch in str(value) if ch.isprintable())
    return value[:limit]


def build_filter(label: str | None = None, max_duration: float | None = None, path: str | None = None) -> str:
    parts = []
    if label:
        parts.append(f"label == {quote(label)}")
    if max_duration is not None:
        parts.append(f"duration <= {float(max_duration)!r}")
    if path is not None:
        parts.append(f"path == {quote(path)}")
    return " and ".join(parts)


def all_of(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)


def one_of(field: str, values: Sequence[str]) -> str:
    return f"{field} in [" + ", ".join(quote(v) for v in values) + "]"


def tags_json(tags: list[dict] | None) -> str:
    """Stored tags: as many of the top ones as fit the field."""
    tags = list(tags or [])
    while tags and len(json.dumps(tags, ensure_ascii=False)) > TAGS_MAX:
        tags.pop()
    return json.dumps(tags, ensure_ascii=False) if tags else ""


def create(conn: Connection, collection: str, model: str, dim: int) -> None:
    """A new, empty, loaded collection for this model's vectors."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
    schema.add_field("file_id", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("seg", DataType.INT64)
    schema.add_field("seg_start", DataType.FLOAT)
    schema.add_field("seg_end", DataType.FLOAT)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX)
    schema.add_field("name", DataType.VARCHAR, max_length=TEXT_MAX)
    schema.add_field("label", DataType.VARCHAR, max_length=TEXT_MAX)
    schema.add_field("duration", DataType.FLOAT)
    schema.add_field("sample_rate", DataType.INT64)
    schema.add_field("indexed_at", DataType.DOUBLE)
    # JSON of the file's top tags ("" when its model has none). Libraries created before
    # this field keep working without tags (has_tags), so the schema version stays 2.
    schema.add_field("tags", DataType.VARCHAR, max_length=TAGS_MAX)
    index = conn.client.prepare_index_params()
    # Exact search in Lite (FLAT); a server gets HNSW, which scales past one machine.
    if conn.is_lite:
        index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
    else:
        index.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    conn.call(
        "create_collection",
        collection,
        schema=schema,
        index_params=index,
        # The default for readers that do not say; Soundalike's own reads say (see connection.READS)
        consistency_level="Strong",
        properties={"soundalike.model": model, "soundalike.dim": str(dim), "soundalike.schema": SCHEMA_VERSION},
    )
    conn.call("load_collection", collection)


def verify(conn: Connection, collection: str, model: str, dim: int) -> bool:
    """Check that an existing collection holds this model's vectors in this schema version;
    returns whether it has the tags field (libraries made before it keep working)."""
    desc = conn.call("describe_collection", collection)
    props = desc.get("properties") or {}
    held = props.get("soundalike.model")
    version = props.get("soundalike.schema") or "1"
    held_dim = None
    for f in desc.get("fields", []):
        if f.get("name") == "embedding":
            held_dim = int((f.get("params") or {}).get("dim", 0))
    if held != model or held_dim != dim:
        raise StoreError(
            f"Collection {collection!r} holds {held or 'unknown'} vectors of dim {held_dim}, "
            f"not {model} (dim {dim}); use another collection or re-index."
        )
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"The library {collection!r} was built by an older Soundalike (schema {version}: one vector "
            f"per file); this version stores segments with timestamps (schema {SCHEMA_VERSION}). Re-index it: "
            f"`python -m search_core drop --yes` then `python -m search_core index <your folders>` "
            f"(or keep it and use another library name with SOUNDALIKE_LIBRARY)."
        )
    return any(f.get("name") == "tags" for f in desc.get("fields", []))


def drop_any(conn: Connection, collection: str) -> int | None:
    """Drop a collection whatever model or schema it holds; how many sounds it held, or None
    when there was no such collection."""
    if not conn.call("has_collection", collection):
        return None
    conn.call("load_collection", collection)
    fields = {f.get("name") for f in conn.call("describe_collection", collection).get("fields", [])}
    n = conn.call("query", collection, filter="seg == 0" if "seg" in fields else "", output_fields=["count(*)"])
    conn.call("drop_collection", collection)
    return int(n[0]["count(*)"]) if n else 0


@dataclass
class Bound:
    """One collection as a Store sees it: where it lives, what it holds, and the lock that orders
    this Store's writes and mirror loads."""

    conn: Connection
    name: str
    model: str
    dim: int
    has_tags: bool = False  # set on open: whether the collection has the tags field
    lock: threading.RLock = field(default_factory=threading.RLock)
