"""A real Milvus server on this machine: standalone 2.3.5 from the PyPI `milvus` package
(`scripts/install.sh --dev` installs it). The tests' server tier, the server fault tests and the
1M-vector benchmark start it through here.

The wrapper (`milvus-server`) does not pass SIGTERM on to its server binary, and the binary itself
does not stop on SIGTERM (its root coordinator stops, the rest retry it for ever): the server runs
in a process group of its own and is killed as a group. A server restarted on the data of a
killed one serves once the dead one's sessions have expired in etcd. One such server runs per machine: its embedded
etcd always takes 127.0.0.1:2380 and its pid file /run/milvus/standalone.pid.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ETCD_PEER_PORT = 2380  # the embedded etcd of milvus 2.3.5 always listens here (not configurable)


class ServerError(RuntimeError):
    """The server could not be started; the message says why (with the end of its log)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def answers(uri: str, timeout: float = 5.0) -> bool:
    """Whether a Milvus server at `uri` lists its collections."""
    from pymilvus import MilvusClient

    try:
        c = MilvusClient(uri, timeout=timeout)
        try:
            c.list_collections()
        finally:
            c.close()
        return True
    except Exception:
        return False


@dataclass
class MilvusServer:
    """A running server: its URI keeps its port across kill() and restart() (an app or a store
    connected to it reconnects to the same address)."""

    uri: str
    proc: subprocess.Popen
    base: Path  # the server's data: its etcd, its segments and its logs

    @property
    def port(self) -> int:
        return int(self.uri.rsplit(":", 1)[1])

    def kill(self) -> None:
        """kill -9 of the whole server. (SIGTERM does not stop Milvus 2.3.5 standalone: its root
        coordinator stops and the other parts retry it for ever.)"""
        kill_process_group(self.proc)

    def restart(self, wait: float = 300.0) -> None:
        """Start it again on its own data and port (after kill(): the killed server's sessions
        are still registered in etcd, and the new one waits them out before it serves)."""
        if group_alive(self.proc.pid):
            self.kill()
        # The killed server's connections leave its port in TIME_WAIT (up to 60 s), and the
        # wrapper binds without SO_REUSEADDR: it would quietly take another port.
        deadline = time.time() + 90
        while not port_free(self.port) and time.time() < deadline:
            time.sleep(1)
        started = start_milvus_server(self.base, self.port, same_data=True, tries=1, wait=wait)
        self.proc = started.proc

    def stop(self) -> None:
        self.kill()


def start_milvus_server(data: Path, port: int | None = None, *, same_data: bool = False, tries: int = 3,
                        wait: float = 180.0, config: dict[str, object] | None = None) -> MilvusServer:
    """Starts `milvus-server` and waits until it answers. Its data lies in `data/run-<try>` (a
    failed start never leaves state for the next try), or in `data` itself with same_data (a
    restart on the data of a server that stopped). The port is a free one unless given. `config`
    overrides keys of the server's milvus.yaml (`{"dataCoord.segment.sealProportion": 1}`)."""
    exe = Path(sys.executable).parent / "milvus-server"
    if not exe.exists():
        raise ServerError("milvus-server is missing: install the test tools with `bash scripts/install.sh --dev`")
    deadline = time.time() + 60  # a server that is still stopping holds the etcd port for a moment
    while not port_free(ETCD_PEER_PORT) and time.time() < deadline:
        time.sleep(1)
    if not port_free(ETCD_PEER_PORT):
        raise ServerError(f"127.0.0.1:{ETCD_PEER_PORT} is held by another process (another Milvus server?): "
                          "the embedded etcd of a Milvus server needs it")
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{data.name}-server.log"
    for attempt in range(tries):
        if port is None or (attempt and not same_data):
            port = free_port()
        base = data if same_data else data / f"run-{attempt}"
        log = data.parent / f"{data.name}-server-{attempt}.log"
        with log.open("a") as out:
            extra = [arg for key, value in (config or {}).items() for arg in ("--extra-config", f"{key}={value}")]
            proc = subprocess.Popen([str(exe), "--data", str(base), "--proxy-port", str(port), *extra],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        uri = f"http://127.0.0.1:{port}"
        started, binary_seen = time.time(), False
        while time.time() < started + wait and proc.poll() is None:
            binary_up = group_alive(proc.pid, but=proc.pid)
            if binary_seen and not binary_up:
                break  # the server binary died (its wrapper lingers on): start again
            binary_seen = binary_seen or binary_up
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
            except OSError:
                time.sleep(1)
                continue
            if answers(uri):
                return MilvusServer(uri, proc, base)
            time.sleep(1)
        kill_process_group(proc)
        time.sleep(2)
    raise ServerError(f"the Milvus server did not start ({tries} tries):\n{log.read_text()[-3000:]}")


def kill_process_group(proc: subprocess.Popen) -> None:
    """SIGKILL to the whole group (wrapper and server binary), then wait until none of it runs."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.time() + 30
    while time.time() < deadline and group_alive(proc.pid):
        proc.poll()  # reap the leader when it exits
        time.sleep(0.1)
    proc.poll()


def group_alive(pgid: int, but: int | None = None) -> bool:
    """Whether any process of the group (other than `but`) is still running; zombies do not count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z" and int(stat.parent.name) != but:
            return True
    return False
