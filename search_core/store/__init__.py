"""Vectors and their metadata in Milvus: Milvus Lite (a local .db file) by default, any Milvus
server or cluster when a URI is set. One collection per (library, model); rows are segments of
files, and a file's sha256 is its identity for dedupe, replace and delete.

The package, one concern per module (each imports only those above it):
- `connection.py` — the gRPC client that heals (reconnect and retry), errors, the Lite lock probe.
- `schema.py`     — collection names, fields, the schema version check, filters built from values.
- `records.py`    — `Record` (a file going in) and `Hit` (a file found).
- `mirror.py`     — Lite's exact in-process search over a copy of the vectors.
- `snapshot.py`   — that mirror kept in step per process, saved beside the library, validated on load.
- `reads.py`      — counts, metadata, iteration and search of one collection.
- `writes.py`     — upsert, delete, settle and drop of one collection.
- `collection.py` — `Store`, the small class the engine uses, composed of the parts above.
"""
from .collection import Store
from .connection import LibraryLocked, StoreError, is_connection_error, lite_lock_held
from .records import Hit, Record
from .schema import SCHEMA_VERSION, build_filter, collection_name, quote, row_id

__all__ = ["Store", "StoreError", "LibraryLocked", "Record", "Hit", "collection_name", "build_filter", "quote", "row_id",
           "is_connection_error", "lite_lock_held", "SCHEMA_VERSION"]
