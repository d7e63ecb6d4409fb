"""One scenario across three hosts: network namespaces on this machine, a partition cut and healed.

Each host is a namespace with its own address (peer.launch.netns); the
launcher reaches it with ``ip netns exec`` as it would reach a real host with
ssh, and the nodes listen on the namespaces' addresses.  During the auction one
host is cut off from the others by an nftables table and healed 4 s later.
Every node must end in a defined outcome and every ledger copy, shipped back
by the host agents, must verify and be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.launch.netns import NamespaceHosts, NetnsError

ROOT = Path(__file__).resolve().parents[2]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if shutil.which("nft") is None:
        return "nftables (nft) is not installed (.ci/run installs it)"
    return None


@pytest.fixture
def testbed(tmp_path: Path) -> Iterator[Path]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bed = NamespaceHosts(f"pt{os.getpid() % 100000}", 3)
    try:
        bed.up()
    except (NetnsError, OSError) as exc:
        bed.down()
        pytest.skip(f"this kernel refuses network namespaces or veth: {exc}")
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(bed.hosts_toml(sys.executable), encoding="utf-8")
    try:
        yield hosts
    finally:
        bed.down()


@pytest.mark.slow
def test_three_namespace_hosts_with_a_partition_healed(testbed: Path, tmp_path: Path) -> None:
    hosts = testbed
    third = [line.split(".", 1)[1].rstrip("]") for line in hosts.read_text().splitlines()
             if line.startswith("[hosts.")][2]
    done = subprocess.run(
        [sys.executable, "-m", "peer.launch", str(ROOT / "scenarios" / "ws-20.toml"), "--hosts", str(hosts),
         "--headless", "--json", "--workdir", str(tmp_path / "run"), "--partition", f"{third}@0.3+4",
         # Waits the launcher sizes for ws-20's depth (docs/troubleshooting.md), so the cut, not
         # a wait too short for the tree, is what the run has to survive.
         "--reply-timeout", "9", "--context-timeout", "7", "--confirm-timeout", "20",
         "--timeout", "90", "--link-timeout", "60"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, (done.stderr[-2000:], done.stdout[-3000:])
    result = json.loads(done.stdout)
    check, spread = result["check"], result["hosts"]
    assert sorted(spread["nodes"].values()) == [6, 7, 7]  # balanced
    assert 0 < spread["edges_across_hosts"] < spread["edges"] // 2  # most edges stay inside a host
    [cut] = spread["partitions"]
    assert cut["host"] == third and cut["cut_at"] is not None and isinstance(cut["healed_at"], float)
    assert "errors" not in spread
    assert check["outcome"] in ("completed", "aborted")
    assert check["ledger_verified"] == check["ledger_copies"] == 20
    # Links across hosts came up, so the nodes listened on the namespaces' own addresses
    # (127.0.0.1 of one namespace is unreachable from another).
    assert check["ledger_identical"] and check["ok"], check
