"""A real Redis Cluster for tests: six Debian ``redis-server`` nodes on loopback (3 masters,
3 replicas), made one cluster with ``redis-cli --cluster create``; a short node timeout so a
killed master fails over in a few seconds. ``kill_master(i)`` SIGKILLs one master."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.redis_server import INSTALL_HINT

NODE_TIMEOUT_MS = 1000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` free ports whose cluster bus ports (port + 10000) are free too, both below
    Linux's ephemeral range (32768 up), where any outgoing connection of the test run (the
    browser's, a client's) may take a port between this check and the node binding it."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(12_000, 22_000)
        if port not in ports and _free(port) and _free(port + 10_000):
            ports.append(port)
    return ports


class RedisCluster:
    """Six redis-server processes bound to 127.0.0.1 forming one cluster."""

    def __init__(self, nodes: int = 6, replicas: int = 1) -> None:
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary, self.cli = binary, cli
        self.replicas = replicas
        self.ports = cluster_ports(nodes)
        self.dir = Path(tempfile.mkdtemp(prefix="tapescope-cluster-"))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """A URL of one live node (any node works as a seed)."""
        port = next(p for p in self.ports if self._alive(p))
        return f"redis://127.0.0.1:{port}/0"

    def _alive(self, port: int) -> bool:
        process = self.processes.get(port)
        return process is not None and process.poll() is None

    def _start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [
            *(self.binary, "--bind", "127.0.0.1", "--port", str(port)),
            *("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            *("--repl-diskless-sync-delay", "0", "--save", "", "--appendonly", "no"),
            *("--dir", str(node_dir)),
        ]
        self.processes[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=node_dir
        )

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1.0, socket_connect_timeout=1.0)

    def _wait(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster: {what} within {timeout_s} s")

    def start(self, timeout_s: float = 30.0) -> None:
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            self._wait(lambda p=port: self._client(p).ping(), timeout_s, f"{port} answering")
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
        )
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` and every replica's link to its
        master is up (a master killed before that would never fail over)."""

        def healthy() -> bool:
            for port in self.ports:
                if not self._alive(port):
                    continue
                client = self._client(port)
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
                info = client.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") != "up":
                    return False
            return True

        self._wait(healthy, timeout_s, "healthy")

    def masters(self) -> list[int]:
        """Ports of the live masters."""
        return [
            p
            for p in self.ports
            if self._alive(p) and self._client(p).info("replication").get("role") == "master"
        ]

    def kill_master(self, index: int = 0) -> int:
        """SIGKILL one master (its replica takes over); returns its port."""
        port = self.masters()[index]
        self.processes[port].kill()
        self.processes[port].wait(timeout=10)
        return port

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
