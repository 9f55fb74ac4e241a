"""Node capabilities: U30 devices from sysfs, the advertised document."""

from __future__ import annotations

from pathlib import Path

from common.definitions.node import NodeCapabilities
from common.nodes.capabilities import capacity_of, count_u30_devices, node_capabilities


def pci_device(root: Path, address: str, vendor: str, device: str) -> None:
    path = root / address
    path.mkdir(parents=True)
    (path / "vendor").write_text(vendor + "\n")
    (path / "device").write_text(device + "\n")


def test_u30_devices_are_counted_by_their_user_functions(tmp_path: Path) -> None:
    # One U30 card: two devices, each a management (503c) and a user (503d) function.
    for bus in ("0000:3b:00", "0000:3c:00"):
        pci_device(tmp_path, f"{bus}.0", "0x10ee", "0x503c")
        pci_device(tmp_path, f"{bus}.1", "0x10ee", "0x503d")
    pci_device(tmp_path, "0000:5e:00.1", "0x10ee", "0x513d")  # a newer shell, user function only
    pci_device(tmp_path, "0000:00:1f.0", "0x8086", "0x503d")  # another vendor
    pci_device(tmp_path, "0000:af:00.0", "0x10ee", "0x5000")  # another Xilinx card
    (tmp_path / "0000:00:00.0").mkdir()  # unreadable entries are skipped
    assert count_u30_devices(tmp_path) == 3


def test_no_sysfs_no_devices(tmp_path: Path) -> None:
    assert count_u30_devices(tmp_path / "missing") == 0


def test_advertised_capacity() -> None:
    caps = node_capabilities(cores=8, ffmpeg={}, overcommit=1.5, u30_devices=2)
    advertised = caps.model_dump(mode="json")  # as the lease and the node row carry it
    assert advertised["cpu"] == {"cores": 8, "overcommit": 1.5, "millicores": 12000}
    assert advertised["u30"] == {"devices": [0, 1], "cards": 1, "slots": 8, "source": "none"}
    assert NodeCapabilities.model_validate(advertised) == caps
    capacity = capacity_of(caps)
    assert (capacity.cpu_millicores, capacity.u30_devices) == (12000, (0, 1))
    declared = node_capabilities(cores=8, ffmpeg={}, cpu_millicores=500)
    assert capacity_of(declared).cpu_millicores == 500
