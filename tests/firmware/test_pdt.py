"""The process directory in memory, decoded by hand from the spec's layouts.

RISC-V IOMMU spec "Process-Directory-Table (PDT)", "Non-leaf PDT entry" and "Process-context
fields": PDI[0] = pid[7:0] indexes 16-byte PCs, PDI[1] = pid[16:8] and PDI[2] = pid[19:17]
index 8-byte PDTEs (V bit 0, PPN bits 53:10); PC.ta has V bit 0, ENS bit 1, SUM bit 2,
PSCID bits 31:12, PC.fsc has PPN bits 43:0 and MODE bits 63:60. Bit positions here are
written out from those tables, not taken from :mod:`iogate.hdl.formats`.
"""

import random

import pytest

from iogate.hdl.formats import IosatpMode, PdtpMode

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.pdt import ProcessContext, ProcessDirectory

from iogate.cosim.model import Memory

BASE = 0x8000_0000


class MemBus:
    """Memory only: the directory needs nothing else."""

    def __init__(self):
        self.memory = Memory()

    def mem_read(self, address, length):
        return self.memory.read(address, length)

    def mem_write(self, address, data):
        self.memory.write(address, bytes(data))


def make(mode):
    bus = MemBus()
    alloc = PageAllocator(bus, BASE, 1 << 24)
    return bus, alloc, ProcessDirectory(bus, alloc, mode)


def u64(bus, address):
    return int.from_bytes(bus.mem_read(address, 8), "little")


def walk_by_hand(bus, root, levels, pid):
    """The spec's GET_PC loop over memory, with the index of each level's own PDI."""
    shifts = {2: (17, 0x7), 1: (8, 0x1FF)}
    table = root
    for level in range(levels - 1, 0, -1):
        shift, mask = shifts[level]
        pdte = u64(bus, table + ((pid >> shift) & mask) * 8)
        assert pdte & 1, f"PDTE at level {level} not valid"
        assert pdte & 0x3FE == 0 and pdte >> 54 == 0, "reserved PDTE bits set"
        table = ((pdte >> 10) & ((1 << 44) - 1)) << 12
    return table + (pid & 0xFF) * 16


@pytest.mark.parametrize("mode", [PdtpMode.PD8, PdtpMode.PD17, PdtpMode.PD20])
def test_pcs_land_where_the_spec_walk_finds_them(mode):
    seed = random.randrange(1 << 32)
    print("seed", seed)
    rng = random.Random(seed)
    bus, alloc, pdt = make(mode)
    pids = {rng.randrange(1 << mode.pid_bits) for _ in range(20)} | {0, (1 << mode.pid_bits) - 1}
    for pid in pids:
        root = rng.randrange(1 << 20) << 12
        pscid = rng.randrange(1 << 20)
        pdt.write(pid, ProcessContext.make(pscid=pscid, mode=IosatpMode.SV48, root=root,
                                           ens=pid & 1, sum=pid & 2))
        address = walk_by_hand(bus, pdt.root, mode.value, pid)
        assert pdt.pc_address(pid) == address
        ta, fsc = u64(bus, address), u64(bus, address + 8)
        assert ta & 1 == 1
        assert (ta >> 1) & 1 == pid & 1 and (ta >> 2) & 1 == bool(pid & 2)
        assert (ta >> 12) & 0xFFFFF == pscid and ta >> 32 == 0 and (ta >> 3) & 0x1FF == 0
        assert fsc >> 60 == 9 and fsc & ((1 << 44) - 1) == root >> 12
        assert (fsc >> 44) & 0xFFFF == 0
    for pid in pids:
        assert pdt.read(pid).valid


@pytest.mark.parametrize("mode, top", [(PdtpMode.PD8, 1 << 8), (PdtpMode.PD17, 1 << 17),
                                       (PdtpMode.PD20, 1 << 20)])
def test_a_process_id_beyond_the_mode_is_refused(mode, top):
    bus, alloc, pdt = make(mode)
    before = alloc.allocated
    with pytest.raises(ValueError, match=f"does not fit the {mode.pid_bits} bits of"):
        pdt.write(top, ProcessContext.make(pscid=1, mode=IosatpMode.SV39, root=0))
    with pytest.raises(TypeError, match="process_id must be an integer"):
        pdt.read(True)
    assert alloc.allocated == before


def test_pdtp_holds_mode_and_root():
    bus, alloc, pdt = make(PdtpMode.PD17)
    assert pdt.pdtp >> 60 == 2 and pdt.pdtp & ((1 << 44) - 1) == pdt.root >> 12
    with pytest.raises(ValueError, match="mode must be PD8, PD17 or PD20, not BARE"):
        ProcessDirectory(bus, alloc, PdtpMode.BARE)
    with pytest.raises(ValueError, match="root must be 4 KiB aligned"):
        ProcessDirectory(bus, alloc, PdtpMode.PD8, root=0x1008)


def test_prune_unlinks_empty_levels_only():
    bus, alloc, pdt = make(PdtpMode.PD20)
    a, b = 0x2_0105, 0x2_0106     # same leaf page
    c = 0x4_0105                  # another PDI[2]
    for pid in (a, b, c):
        pdt.write(pid, ProcessContext.make(pscid=pid, mode=IosatpMode.SV39, root=0))
    pdt.write(a, ProcessContext(), words=("ta", "fsc"))
    assert pdt.prune(a) == []                      # b still lives in the leaf page
    leaf = pdt.pc_address(b) & ~0xFFF
    mid = u64(bus, pdt.root + 1 * 8) >> 10 << 12 & ((1 << 56) - 1)
    pdt.write(b, ProcessContext(), words=("ta", "fsc"))
    assert pdt.prune(b) == [leaf, mid]
    assert u64(bus, pdt.root + 1 * 8) == 0         # PDI[2] = 1's PDTE cleared
    assert pdt.read(c).valid and pdt.read(c).pscid == c
    assert set(pdt.pages()) == {pdt.root, pdt.pc_address(c) & ~0xFFF,
                                u64(bus, pdt.root + 2 * 8) >> 10 << 12 & ((1 << 56) - 1)}
