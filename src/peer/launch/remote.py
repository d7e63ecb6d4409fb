"""The launcher's side of a several-host launch: one agent per host, driven like local children.

:class:`RemoteChildren` offers what the launcher's watch loop uses of
:class:`peer.launch.processes.Children` (``start``, ``signal``, ``kill``,
``dead``, ``stop``, ``memory_kib``), backed by the host agents of
:mod:`peer.launch.host_agent`.  Every log line an agent relays is appended to
the node's log file here, where the monitor reads it as for a local run; on
stop each node's data directory comes back and is unpacked where the checks
look for it.  So the check of a several-host run is the check of a local one.

Partitions (``--partition HOST@AT+FOR``) cut a host off from every other
host AT seconds after the sale is announced and heal it FOR seconds later: an
nftables table in the host (run through its own command) drops TCP to and
from the other hosts' addresses, and deleting the table heals it.
"""

from __future__ import annotations

import base64
import io
import json
import signal as signals
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer.launch.hosts import HostSpec, HostsError
from peer.launch.plan import NodePlan

AGENT_START = 30.0  # seconds an agent may take to answer at all (ssh, imports)
STOP_WAIT = 30.0  # seconds for every agent to stop its nodes and send the ledgers back
TABLE = "peer_partition"


@dataclass(frozen=True)
class Partition:
    host: str
    at: float  # seconds after the announcement
    duration: float

    @classmethod
    def parse(cls, text: str, hosts: set[str]) -> Partition:
        host, at_sign, rest = text.partition("@")
        at, plus, duration = rest.partition("+")
        try:
            parsed = cls(host, float(at), float(duration))
        except ValueError:
            parsed = None
        if not at_sign or not plus or parsed is None or parsed.at < 0 or parsed.duration <= 0:
            raise HostsError(f"--partition {text!r}: expected HOST@SECONDS+SECONDS, e.g. h3@1+4")
        if host not in hosts:
            raise HostsError(f"--partition {text!r}: no host {host!r} in the hosts file")
        return parsed


@dataclass
class _Agent:
    host: HostSpec
    proc: subprocess.Popen[bytes]
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RemoteChildren:
    def __init__(self, hosts: list[HostSpec], assignment: dict[str, str], root: Path,
                 partitions: list[Partition] | None = None) -> None:
        self.hosts = {h.name: h for h in hosts}
        self.assignment = assignment
        self.root = root
        self.partitions = partitions or []
        self.procs: dict[str, Any] = {}  # node -> plan, for the launcher's bookkeeping
        self._plans: dict[str, NodePlan] = {}
        self._agents: dict[str, _Agent] = {}
        self._dead: dict[str, int] = {}
        self._memory: dict[str, int] = {}
        self._announced: float | None = None
        self.cuts: list[dict[str, Any]] = []  # what the partition thread did, for the report
        self.errors: list[str] = []
        self._agent_gone: dict[str, str] = {}  # node -> why, for nodes whose host agent died

    # ----------------------------------------------------------- lifecycle

    def start(self, plans: list[NodePlan]) -> None:
        self._plans = {p.name: p for p in plans}
        self.procs = dict(self._plans)
        for host in self.hosts.values():
            mine = [p for p in plans if self.assignment[p.name] == host.name]
            # The agent's stderr goes to a file; the child holds its own descriptor, so ours is
            # closed at once (it used to stay open for the launcher's life, one per host).
            with (self.root / "logs" / f"agent-{host.name}.err").open("wb") as log:
                proc = subprocess.Popen(
                    [*host.command, host.python, "-m", "peer.launch.host_agent"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                )
            agent = _Agent(host, proc)
            self._agents[host.name] = agent
            plan = {"root": str(self.root), "nodes": [
                {"name": p.name, "argv": p.argv, "key": p.key_path.read_text(encoding="utf-8")} for p in mine]}
            self._send(agent, plan)
            threading.Thread(target=self._read, args=(agent,), daemon=True).start()

    def _send(self, agent: _Agent, obj: dict[str, Any]) -> None:
        assert agent.proc.stdin is not None
        with agent.lock:
            try:
                agent.proc.stdin.write((json.dumps(obj) + "\n").encode())
                agent.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self.errors.append(f"host {agent.host.name}: its agent is gone")

    def _read(self, agent: _Agent) -> None:
        assert agent.proc.stdout is not None
        logs: dict[str, Any] = {}
        for raw in agent.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            kind, node = msg.get("ev"), msg.get("node")
            if kind == "log" and node in self._plans:
                handle = logs.get(node)
                if handle is None:
                    handle = logs[node] = self._plans[node].log_path.open("a", encoding="utf-8")
                handle.write(msg["line"] + "\n")
                handle.flush()
            elif kind == "exit" and node in self._plans:
                self._dead[node] = int(msg["code"])
            elif kind == "memory":
                self._memory.update(msg.get("kib", {}))
            elif kind == "ledger" and node in self._plans:
                self._unpack(self._plans[node].data_dir, msg["tar"])
            elif kind == "stopped":
                agent.stopped.set()
        for handle in logs.values():
            handle.close()
        agent.proc.stdout.close()  # at end of file: the agent is gone
        agent.stopped.set()
        if agent.proc.poll() is None:
            agent.proc.wait(5)
        code = agent.proc.returncode
        if code not in (0, None):
            # The whole host went away: its nodes are as good as dead, and the why is in the
            # agent's stderr (its traceback, or the remote command's own error), not in theirs.
            where = self.root / "logs" / f"agent-{agent.host.name}.err"
            self.errors.append(f"host {agent.host.name}: its agent exited with code {code} (see {where})")
            for name, host in self.assignment.items():
                if host == agent.host.name:
                    self._agent_gone.setdefault(name, f"its host {host}'s agent exited with code {code}: see {where}")
                    self._dead.setdefault(name, code if code is not None else -1)

    def log_hint(self, name: str) -> str:
        """Where to look when node ``name`` died: its host agent's stderr if the agent went away."""
        return self._agent_gone.get(name, "see its .out log")

    @staticmethod
    def _unpack(directory: Path, payload: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload)), mode="r:gz") as tar:
            tar.extractall(directory, filter="data")

    def dead(self) -> dict[str, int]:
        return dict(self._dead)

    def signal(self, name: str, signum: int) -> None:
        if signum == signals.SIGUSR1 and self._announced is None:
            self._announced = time.monotonic()
            if self.partitions:
                threading.Thread(target=self._run_partitions, daemon=True).start()
        self._send(self._agents[self.assignment[name]], {"op": "signal", "node": name, "signum": int(signum)})

    def kill(self, name: str) -> None:
        self.signal(name, signals.SIGKILL)

    def restart(self, plan: NodePlan) -> None:
        raise HostsError("--restart-after is not supported across hosts")

    def memory_kib(self) -> dict[str, int]:
        for agent in self._agents.values():
            self._send(agent, {"op": "memory"})
        deadline = time.monotonic() + 2.0
        while len(self._memory) < len(self._plans) and time.monotonic() < deadline:
            time.sleep(0.02)
        return dict(self._memory)

    def stop(self, grace: float = 3.0) -> None:
        self.heal_all()
        for agent in self._agents.values():
            self._send(agent, {"op": "stop"})
        deadline = time.monotonic() + STOP_WAIT
        for agent in self._agents.values():
            agent.stopped.wait(max(0.0, deadline - time.monotonic()))
            if agent.proc.stdin is not None:
                try:
                    agent.proc.stdin.close()
                except OSError:
                    pass
            try:
                agent.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                agent.proc.kill()
                agent.proc.wait(5)

    # ---------------------------------------------------------- partitions

    def partition_pending(self) -> bool:
        """A partition that has not been healed yet (the run is not over before it is)."""
        done = {(c["host"], c["at"]) for c in self.cuts if c.get("healed_at") is not None}
        return any((p.host, p.at) not in done for p in self.partitions)

    def cut_nodes(self) -> set[str]:
        hosts = {c["host"] for c in self.cuts}
        return {n for n, h in self.assignment.items() if h in hosts}

    def _run_partitions(self) -> None:
        assert self._announced is not None
        for p in sorted(self.partitions, key=lambda p: p.at):
            time.sleep(max(0.0, self._announced + p.at - time.monotonic()))
            record: dict[str, Any] = {"host": p.host, "at": p.at, "cut_at": None, "healed_at": None}
            self.cuts.append(record)
            record["cut_at"] = round(time.monotonic() - self._announced, 3)
            self._nft(p.host, self._cut_rules(p.host))
            time.sleep(p.duration)
            self._nft(p.host, f"delete table inet {TABLE}\n")
            record["healed_at"] = round(time.monotonic() - self._announced, 3)

    def heal_all(self) -> None:
        for record in self.cuts:
            if record.get("healed_at") is None:
                self._nft(record["host"], f"delete table inet {TABLE}\n")
                record["healed_at"] = "at stop"

    def _cut_rules(self, host: str) -> str:
        others = ", ".join(sorted({h.address for h in self.hosts.values() if h.name != host}))
        return (f"table inet {TABLE} {{\n"
                f"  chain input {{ type filter hook input priority -10; policy accept; "
                f"ip saddr {{ {others} }} meta l4proto tcp drop; }}\n"
                f"  chain output {{ type filter hook output priority -10; policy accept; "
                f"ip daddr {{ {others} }} meta l4proto tcp drop; }}\n}}\n")

    def _nft(self, host: str, rules: str) -> None:
        spec = self.hosts[host]
        try:
            done = subprocess.run([*spec.command, "nft", "-f", "-"], input=rules.encode(), capture_output=True,
                                  timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.errors.append(f"partition of {host}: {exc}")
            return
        if done.returncode != 0:
            self.errors.append(f"partition of {host}: nft: {done.stderr.decode(errors='replace').strip()}")
