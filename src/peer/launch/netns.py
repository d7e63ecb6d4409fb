"""Test hosts on one machine: Linux network namespaces joined by a bridge.

``python -m peer.launch.netns up 3 --out hosts.toml`` makes hosts
``<prefix>-h1`` ... ``<prefix>-h3``, each a namespace with its own loopback and
one veth into a switch namespace that holds the bridge, and writes the hosts
file for ``peer launch SCENARIO --hosts hosts.toml``: the command that runs a
program on a host is ``ip netns exec NAME``.  ``... down`` removes them.
Root (or CAP_NET_ADMIN) is needed; nothing outside the namespaces it makes
is touched, so it is safe on a shared machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


class NetnsError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, timeout=10)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")


@dataclass(frozen=True)
class NamespaceHosts:
    prefix: str
    count: int
    subnet: str = "10.213.77"  # /24, used only inside the namespaces made here

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def host(self, index: int) -> str:
        return f"{self.prefix}-h{index}"

    def address(self, index: int) -> str:
        return f"{self.subnet}.{index}"

    def up(self) -> None:
        self.down()
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i in range(1, self.count + 1):
            ns = self.host(i)
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Both ends are made inside the switch namespace, then one moves to the host:
            # the root namespace never sees them.
            _ip("-n", self.switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0")
            _ip("-n", self.switch, "link", "set", "eth0", "netns", ns)
            _ip("-n", self.switch, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", self.switch, "link", "set", f"p{i}", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def down(self) -> None:
        names = [self.switch] + [self.host(i) for i in range(1, self.count + 1)]
        existing = subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10).stdout.decode()
        present = {line.split()[0] for line in existing.splitlines() if line.strip()}
        for name in names:
            if name in present:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)

    def hosts_toml(self, python: str = sys.executable) -> str:
        lines = []
        for i in range(1, self.count + 1):
            lines += [f'[hosts.{self.host(i)}]', f'address = "{self.address(i)}"',
                      f'command = ["ip", "netns", "exec", "{self.host(i)}"]', f'python = "{python}"', ""]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peer.launch.netns", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("count", type=int, nargs="?", default=3)
    parser.add_argument("--prefix", default="peer")
    parser.add_argument("--out", type=Path, help="write the hosts file here (up)")
    args = parser.parse_args(argv)
    bed = NamespaceHosts(args.prefix, args.count)
    try:
        if args.action == "up":
            bed.up()
            text = bed.hosts_toml()
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        else:
            bed.down()
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
