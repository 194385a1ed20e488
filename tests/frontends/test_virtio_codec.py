"""The virtio-iommu byte codecs against layouts worked out by hand from the spec (v0.12)."""

import pytest

from iogate.hdl.formats import Cause, Ttyp

from iogate.firmware.fq import FaultRecord

from iogate.cosim.host.virtio import abi
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.config import ConfigSpace
from iogate.cosim.host.virtio.events import Fault, from_record
from iogate.cosim.host.virtio.probe import ResvMem, decode_properties, encode_properties


def test_numbers_from_the_spec():
    assert abi.DEVICE_ID == 23 and abi.PCI_DEVICE_ID == 0x1057
    assert [int(t) for t in abi.RequestType] == [1, 2, 3, 4, 5]
    assert [int(s) for s in abi.Status] == list(range(9))
    assert abi.MapFlag.MMIO == 4                      # not v0.9's 1 << 3
    assert abi.Feature.BYPASS_CONFIG == 64 and abi.Feature.PROBE == 16


def test_attach_layout():
    raw = rq.Attach(domain=0x01020304, endpoint=0x0A0B0C0D, flags=1).encode()
    assert raw == bytes([1, 0, 0, 0, 4, 3, 2, 1, 0x0D, 0x0C, 0x0B, 0x0A, 1, 0, 0, 0,
                         0, 0, 0, 0])
    assert rq.decode(raw) == rq.Attach(0x01020304, 0x0A0B0C0D, 1, bytes(4))


def test_detach_layout():
    raw = rq.Detach(domain=5, endpoint=6).encode()
    assert raw == bytes([2, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0]) + bytes(8)


def test_map_layout():
    raw = rq.Map(domain=1, virt_start=0x1000, virt_end=0x1FFF, phys_start=0xA000,
                 flags=1).encode()
    assert len(raw) == 36
    assert raw[0] == 3 and raw[4:8] == b"\x01\0\0\0"
    assert raw[8:16] == (0x1000).to_bytes(8, "little")
    assert raw[16:24] == (0x1FFF).to_bytes(8, "little")
    assert raw[24:32] == (0xA000).to_bytes(8, "little")
    assert raw[32:36] == b"\x01\0\0\0"


def test_unmap_and_probe_layouts():
    raw = rq.Unmap(domain=1, virt_start=0x1000, virt_end=0x1FFF).encode()
    assert len(raw) == 28 and raw[0] == 4 and raw[24:28] == bytes(4)
    raw = rq.Probe(endpoint=8).encode()
    assert len(raw) == 72 and raw[:8] == bytes([5, 0, 0, 0, 8, 0, 0, 0])


def test_head_reserved_is_ignored_by_decode():
    raw = rq.Detach(1, 2).encode(head_reserved=b"\xff\xff\xff")
    assert raw[1:4] == b"\xff\xff\xff"
    assert rq.decode(raw) == rq.Detach(1, 2)


def test_decode_errors():
    with pytest.raises(rq.NoHead):
        rq.decode(b"\x01\0\0")
    with pytest.raises(rq.UnknownType) as e:
        rq.decode(b"\x06\0\0\0" + bytes(40))
    assert e.value.type == 6
    with pytest.raises(rq.Truncated) as e:
        rq.decode(rq.Map(1, 0, 0xFFF, 0, 1).encode()[:35])
    assert e.value.type == abi.RequestType.MAP and e.value.length == 35


def test_longer_readable_part_is_accepted():
    assert rq.decode(rq.Attach(1, 2).encode() + b"extra") == rq.Attach(1, 2)


def test_tail():
    assert rq.encode_tail(abi.Status.RANGE) == b"\x05\0\0\0"
    assert rq.decode_tail(b"") == abi.Status.IOERR         # used length 0
    assert rq.decode_tail(b"\x06\xff\xff\xff") == abi.Status.NOENT


def test_config_space_layout():
    cfg = ConfigSpace(page_size_mask=0x40211000, input_range=(0, 0x7F_FFFF_FFFF),
                      domain_range=(1, 0xFFFF), probe_size=512, bypass=1)
    raw = cfg.to_bytes()
    assert len(raw) == 40
    assert raw[0:8] == bytes([0, 0x10, 0x21, 0x40, 0, 0, 0, 0])
    assert raw[16:24] == bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0])
    assert cfg.read(16, 8) == 0x7F_FFFF_FFFF
    assert cfg.read(24, 4) == 1 and cfg.read(28, 4) == 0xFFFF
    assert cfg.read(32, 4) == 512 and cfg.read(36, 1) == 1
    assert cfg.read(37, 2) == 0                    # reserved
    assert cfg.read(36, 4) == 1
    assert cfg.read(40, 4) == 0xFFFF_FFFF          # beyond the structure
    assert cfg.granule == 0x1000


def test_config_write_only_bypass():
    cfg = ConfigSpace(page_size_mask=0x1000, input_range=(0, 0xFFFF),
                      domain_range=(0, 9), probe_size=0)
    assert not cfg.write(0, 8, 0)                  # page_size_mask is read-only
    assert cfg.read(0, 8) == 0x1000
    assert cfg.write(36, 1, 1) and cfg.bypass == 1
    assert not cfg.write(36, 1, 2) and cfg.bypass == 1    # only 0 or 1
    assert cfg.write(32, 8, 0) and cfg.bypass == 0        # byte 4 of the write is bypass
    assert cfg.read(32, 4) == 0 and cfg.probe_size == 0


def test_config_not_writable_without_bypass_config():
    cfg = ConfigSpace(page_size_mask=0x1000, input_range=(0, 1), domain_range=(0, 0),
                      probe_size=0, bypass_writable=False)
    assert not cfg.write(36, 1, 1) and cfg.bypass == 0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(page_size_mask=0), ValueError, "page_size_mask must be a non-zero 64-bit mask"),
    (dict(page_size_mask="4k"), TypeError, "page_size_mask must be an integer"),
    (dict(input_range=(5, 4)), ValueError, "input_range must be an inclusive 64-bit range"),
    (dict(domain_range=(0, 1 << 32)), ValueError, "domain_range must be an inclusive 32-bit"),
    (dict(domain_range=[0, 1]), TypeError, "domain_range must be a pair of integers"),
    (dict(bypass=2), ValueError, "bypass must be 0 or 1, not 2"),
])
def test_config_validation(kwargs, error, message):
    args = dict(page_size_mask=0x1000, input_range=(0, 1), domain_range=(0, 1),
                probe_size=0)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        ConfigSpace(**args)


def test_config_access_validation():
    cfg = ConfigSpace(page_size_mask=0x1000, input_range=(0, 1), domain_range=(0, 1),
                      probe_size=0)
    with pytest.raises(ValueError, match="size must be 1, 2, 4 or 8, not 3"):
        cfg.read(0, 3)
    with pytest.raises(ValueError, match="offset must not be negative"):
        cfg.read(-1, 1)


def test_resv_mem_property_layout():
    prop = ResvMem(abi.ResvMemSubtype.MSI, 0x800_0000, 0x80F_FFFF).encode()
    assert prop == (bytes([1, 0, 20, 0, 1, 0, 0, 0])
                    + (0x800_0000).to_bytes(8, "little") + (0x80F_FFFF).to_bytes(8, "little"))


def test_properties_zero_filled_and_decoded():
    regions = [ResvMem(0, 0x1000, 0x1FFF), ResvMem(1, 0x800_0000, 0x80F_FFFF)]
    buf = encode_properties(regions, 64)
    assert len(buf) == 64 and buf[48:] == bytes(16)
    assert decode_properties(buf) == regions
    with pytest.raises(ValueError, match="48 bytes of properties do not fit probe_size 40"):
        encode_properties(regions, 40)


def test_decode_properties_follows_driver_rules():
    unknown = bytes([7, 0, 4, 0]) + bytes(4)                   # type 7, length 4: skipped
    reserved_set = bytes([1, 0x10, 20, 0]) + bytes(20)         # reserved bit 12: ignored
    good = ResvMem(0, 0x2000, 0x2FFF).encode()
    assert decode_properties(unknown + reserved_set + good) == [ResvMem(0, 0x2000, 0x2FFF)]
    assert decode_properties(good[:20]) == []                  # runs past the end


def test_fault_record_layout():
    raw = Fault(reason=2, flags=0x102, endpoint=9, address=0x1234_5000).encode()
    assert raw == (bytes([2, 0, 0, 0, 2, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0])
                   + (0x1234_5000).to_bytes(8, "little"))
    assert Fault.decode(raw) == Fault(2, 0x102, 9, 0x1234_5000)
    assert Fault.decode(b"\x02\x01" + raw[2:]) is None        # reserved set: ignored


def _record(cause, ttyp, did=3, iotval=0x5000):
    return FaultRecord(cause=cause, ttyp=ttyp, did=did, pv=False, pid=0, priv=False,
                       iotval=iotval, iotval2=0)


@pytest.mark.parametrize("cause, ttyp, reason, flags", [
    (Cause.DDT_ENTRY_NOT_VALID, Ttyp.UNTRANSLATED_READ, 1, 0x101),
    (Cause.WRITE_PAGE_FAULT, Ttyp.UNTRANSLATED_WRITE, 2, 0x102),
    (Cause.READ_PAGE_FAULT, Ttyp.UNTRANSLATED_READ, 2, 0x101),
    (Cause.INSTRUCTION_PAGE_FAULT, Ttyp.UNTRANSLATED_EXEC, 2, 0x101),
    (Cause.READ_ACCESS_FAULT, Ttyp.UNTRANSLATED_READ, 0, 0x101),
    (Cause.DDT_ENTRY_MISCONFIGURED, Ttyp.UNTRANSLATED_WRITE, 0, 0x102),
])
def test_fault_from_record(cause, ttyp, reason, flags):
    assert from_record(_record(cause, ttyp)) == Fault(reason, flags, 3, 0x5000)


def test_no_event_for_faults_without_a_transaction():
    assert from_record(_record(Cause.IOMMU_MSI_WRITE_ACCESS_FAULT, Ttyp.NONE, did=0)) is None
