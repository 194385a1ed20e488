"""The fault-queue drain: record decoding, fqh, overflow and memory faults."""

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import Cause, Ttyp
from iogate.hdl.regs import IPSR, Offset

from iogate.firmware.alloc import PageAllocator
from iogate.firmware.driver import Iommu
from iogate.firmware.fq import FaultRecord

from iogate.cosim.model import IommuModel, Memory
from iogate.cosim.model.bus import ModelBus


def test_record_decoding():
    # dword0: CAUSE 13 [11:0], PID 0x12345 [31:12], PV [32], PRIV [33], TTYP 2 [39:34],
    # DID 0xABCDEF [63:40]; dword2 iotval; dword3 iotval2 (spec "Fault/Event-Queue (FQ)").
    dword0 = 13 | 0x12345 << 12 | 1 << 32 | 1 << 33 | 2 << 34 | 0xABCDEF << 40
    raw = b"".join(w.to_bytes(8, "little") for w in (dword0, 0, 0xFFFF_0000_1000, 0x8005))
    rec = FaultRecord.from_bytes(raw)
    assert rec == FaultRecord(cause=Cause.READ_PAGE_FAULT, ttyp=Ttyp.UNTRANSLATED_READ,
                              did=0xABCDEF, pv=True, pid=0x12345, priv=True,
                              iotval=0xFFFF_0000_1000, iotval2=0x8005)
    assert type(rec.cause) is Cause and type(rec.ttyp) is Ttyp


def test_custom_encodings_stay_integers():
    # CAUSE 2048 and TTYP 32 are custom: no enum member.
    rec = FaultRecord.from_bytes((2048 | 32 << 34).to_bytes(32, "little"))
    assert (rec.cause, rec.ttyp) == (2048, 32)


def test_record_size_checked():
    with pytest.raises(ValueError, match=r"^a fault record is 32 bytes, not 16$"):
        FaultRecord.from_bytes(bytes(16))


def system(fq_entries=64, interrupts=False):
    model = IommuModel(Config(), Memory())
    bus = ModelBus(model)
    io = Iommu(bus, PageAllocator(bus, 0x1_0000_0000, 1 << 24), fq_entries=fq_entries,
               interrupts=interrupts)
    io.init(device_id_bits=7)
    io.set_blocked(9)
    return io, model


def test_drain_reads_in_order_and_advances_fqh():
    io, model = system()
    for access in ("read", "write", "execute"):
        model.translate(9, 0x7000, access)
    drain = io.drain_faults()
    assert [(r.cause, r.ttyp, r.did, r.iotval) for r in drain] == [
        (Cause.DDT_ENTRY_NOT_VALID, Ttyp.UNTRANSLATED_READ, 9, 0x7000),
        (Cause.DDT_ENTRY_NOT_VALID, Ttyp.UNTRANSLATED_WRITE, 9, 0x7000),
        (Cause.DDT_ENTRY_NOT_VALID, Ttyp.UNTRANSLATED_EXEC, 9, 0x7000),
    ]
    assert not drain.overflow and not drain.memory_fault
    assert model.mmio_read(Offset.FQH, 4) == 3 == model.mmio_read(Offset.FQT, 4)
    assert len(io.drain_faults()) == 0


def test_limit():
    io, model = system()
    for _ in range(3):
        model.translate(9, 0, "read")
    assert len(io.drain_faults(limit=2)) == 2
    assert len(io.drain_faults()) == 1


def test_overflow_is_reported_and_cleared():
    # 2 entries hold 1 record (full is fqt == fqh - 1): the 2nd and 3rd are dropped.
    io, model = system(fq_entries=2)
    for iova in (0x1000, 0x2000, 0x3000):
        model.translate(9, iova, "read")
    drain = io.drain_faults()
    assert drain.overflow and [r.iotval for r in drain] == [0x1000]
    model.translate(9, 0x4000, "read")
    drain = io.drain_faults()
    assert not drain.overflow and [r.iotval for r in drain] == [0x4000]


def test_memory_fault_is_reported_and_cleared():
    io, model = system()
    model.memory.inject_fault(io.fq.base, 32)
    model.translate(9, 0x1000, "read")
    drain = io.drain_faults()
    assert drain.memory_fault and len(drain) == 0
    model.memory.clear_faults()
    model.translate(9, 0x2000, "read")
    drain = io.drain_faults()
    assert not drain.memory_fault and [r.iotval for r in drain] == [0x2000]


def test_drain_clears_fip():
    io, model = system(interrupts=True)
    model.translate(9, 0, "read")
    assert bits.get(IPSR, model.mmio_read(Offset.IPSR, 4), "fip") == 1
    io.drain_faults()
    assert bits.get(IPSR, model.mmio_read(Offset.IPSR, 4), "fip") == 0
