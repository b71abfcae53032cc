"""A connection to Milvus that heals, and the errors people see when it cannot.

Milvus Lite's in-process gRPC server refuses keepalive pings (it answers GOAWAY too_many_pings
after a few idle pings, and a channel shared with the old subchannel then fails to reconnect), so
Lite clients send none. Every call that meets a broken channel (GOAWAY, UNAVAILABLE, a restarted
server) reconnects on a fresh channel and retries a bounded number of times, else raises
StoreError. Every call the store makes is idempotent (upserts by primary key, deletes by id,
reads), which is what makes the retry safe.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

from ..settings import is_lite_uri

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # seconds before each reconnect-and-retry

# Lite's server runs in this process on loopback: pings detect nothing there and only provoke
# GOAWAY too_many_pings. A local subchannel pool makes every reconnect a truly fresh channel.
LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0,
                     "grpc.use_local_subchannel_pool": 1}
SERVER_GRPC_OPTIONS = {"grpc.use_local_subchannel_pool": 1}
# A server's reads use Session consistency: they see every write this process made (pymilvus keeps
# its last write's timestamp) without waiting. Strong makes every read wait for the next time tick,
# ~200 ms per search on a server (measured: 200 ms against 5-6 ms); writers call settle() instead.
# Except a channel's first read, which is Strong: a process that has not written has no session
# timestamp, so Session means "whatever the query node holds now", and a restarted server replays
# its unflushed writes from its log for a while after it answers (a search then saw an empty
# library). One wait per channel makes every later read see at least what the server held.
READS = frozenset({"search", "query", "query_iterator", "get"})


class StoreError(RuntimeError):
    """The vector store refused an operation; the message is for people."""


class LibraryLocked(StoreError):
    """The Milvus Lite file is open in another process: Lite allows one process per file."""

    def __init__(self, uri: str):
        self.uri = uri
        super().__init__(f"The library {uri} is open in another process (a running Soundalike app, or a command "
                         "still working on it): Milvus Lite lets one process at a time open a library file.")


def lite_lock_held(uri: str) -> bool:
    """Whether another process holds Milvus Lite's lock on this library file (it takes an
    exclusive flock on `<db>/LOCK` while the file is open). A probe: it takes and drops the lock."""
    lock = Path(uri) / "LOCK"
    try:
        import fcntl
    except ImportError:  # Windows: Lite locks differently there; opening reports it
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:  # no lock file: the library was never opened, or is not a Lite file
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def is_connection_error(exc: BaseException) -> bool:
    """A broken or refused channel (worth a reconnect), as opposed to an error of the request."""
    import grpc

    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, grpc.RpcError) and hasattr(seen, "code") and seen.code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED
        ):
            return True
        if getattr(seen, "code", None) == 2 and "Fail connecting" in str(seen):  # pymilvus CONNECT_FAILED
            return True
        msg = str(seen).lower()
        if any(s in msg for s in ("unavailable", "fail connecting", "goaway", "too many pings", "too_many_pings",
                                  "socket closed", "connection reset", "connection refused", "channel closed",
                                  "cannot invoke rpc on closed channel")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Connection:
    """One Milvus endpoint (a Lite file or a server URI) and the calls made to it.

    Clients are shared per URI per process (Lite allows one per .db file); `call` reconnects and
    retries on a broken channel, and loads a collection a restarted server holds released."""

    _clients: dict[str, object] = {}
    _clients_lock = threading.Lock()

    def __init__(self, uri: str, token: str | None = None, grpc_options: dict | None = None):
        self.uri = uri
        self.token = token
        self.grpc_options = grpc_options

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.uri)

    @property
    def where(self) -> str:
        """The URI without credentials, for messages."""
        return self.uri if self.is_lite else re.sub(r"//[^@/]*@", "//", self.uri)

    @property
    def _key(self) -> str:
        return f"{self.uri}|{self.token or ''}|{sorted((self.grpc_options or {}).items())}"

    @property
    def client(self):
        with self._clients_lock:
            client = self._clients.get(self._key)
            if client is None:
                client = self._clients[self._key] = self._connect()
            return client

    def _connect(self):
        from pymilvus import MilvusClient

        # pymilvus warns on every Lite query_iterator (no server-side mvcc ts), and logs its own
        # reconnect attempts with tracebacks; the store reports what matters as StoreError.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
        if self.is_lite:
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            # Lite's in-process server logs a traceback for every query_iterator (AllocTimestamp is not implemented)
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        options = dict(LITE_GRPC_OPTIONS if self.is_lite else SERVER_GRPC_OPTIONS)
        options.update(self.grpc_options or {})
        try:
            # dedicated: this client owns its channel, so a reconnect never inherits a broken one
            return MilvusClient(self.uri, token=self.token or "", dedicated=True, grpc_options=options)
        except Exception as exc:
            if self.is_lite and lite_lock_held(self.uri):
                raise LibraryLocked(self.uri) from None
            raise StoreError(f"Cannot open Milvus at {self.where} ({str(exc).splitlines()[0]})") from None

    def reconnect(self, broken) -> None:
        with self._clients_lock:
            if self._clients.get(self._key) is broken:
                self._clients.pop(self._key, None)
                try:
                    broken.close()
                except Exception:
                    pass
        self.client  # a fresh channel (for Lite: the in-process server is restarted if it stopped)

    def call(self, op: str, *args, collection: str | None = None, **kwargs):
        """client.<op>(...) with reconnect-and-retry on a broken channel (every op here is
        idempotent). `collection` is loaded again when a restarted server holds it released."""
        last: BaseException | None = None
        for delay in (0.0, *RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                client = self.client
            except StoreError as exc:
                last = exc
                continue
            call = dict(kwargs)
            if op in READS and not self.is_lite:
                call.setdefault("consistency_level", "Session" if getattr(client, "_soundalike_settled", False) else "Strong")
            try:
                result = getattr(client, op)(*args, **call)
                if call.get("consistency_level") == "Strong":
                    client._soundalike_settled = True
                return result
            except Exception as exc:
                if op != "load_collection" and ("call load()" in str(exc) or "collection not loaded" in str(exc)):
                    # A restarted server (or Lite) starts with collections released: load, then try
                    # again. Loading can fail while the server recovers: that is retried too.
                    last = exc
                    try:
                        client.load_collection(collection or args[0])
                    except Exception as again:
                        last = again
                    continue
                if not is_connection_error(exc):
                    raise
                last = exc
                try:
                    self.reconnect(client)
                except StoreError as again:
                    last = again
        raise StoreError(
            f"Lost the connection to Milvus at {self.where} and could not restore it "
            f"({str(last).splitlines()[0] if last else 'unknown error'})"
        ) from None

    def query_rows(self, collection: str, *, batch: int, filter: str, output_fields: list[str]):
        """Every row a query_iterator gives, as dicts. A broken channel before the first row
        starts again; after it, rows were already given out, so it raises StoreError."""
        started = False
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                it = self.call("query_iterator", collection, batch_size=batch, filter=filter, output_fields=output_fields)
                try:
                    while rows := it.next():
                        for r in rows:
                            started = True
                            yield dict(r)
                finally:
                    it.close()
                return
            except StoreError:
                raise
            except Exception as exc:
                if started or not is_connection_error(exc) or attempt == len(RETRY_DELAYS):
                    if is_connection_error(exc):
                        raise StoreError(f"Lost the connection to Milvus at {self.where} while reading") from None
                    raise
                time.sleep(RETRY_DELAYS[attempt])
                self.reconnect(self.client)

    @classmethod
    def close_all(cls) -> list[str]:
        """Close every shared client; returns the Lite files they had open."""
        with cls._clients_lock:
            lite = sorted({key.split("|", 1)[0] for key in cls._clients if is_lite_uri(key.split("|", 1)[0])})
            for client in cls._clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            cls._clients.clear()
        return lite
