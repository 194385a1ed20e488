"""The virtio-iommu device's normative rules (virtio spec, "IOMMU device"), request by
request, checked through what DMA then does on the architectural model."""

import pytest

from iogate.hdl.formats import Cause, Pbmt

from frontend_helpers import attach, detach, map_, pa, status, unmap
from iogate.cosim.host.core import HostIommu
from iogate.cosim.host.virtio import VirtioIommu
from iogate.cosim.host.virtio import requests as rq
from iogate.cosim.host.virtio.abi import AttachFlag, FaultFlag, FaultReason, MapFlag, Status
from iogate.cosim.host.virtio.events import Fault

MIB = 1 << 20
DOMAIN_FAULT = ("fault", Cause.DDT_ENTRY_NOT_VALID)
READ_FAULT = ("fault", Cause.READ_PAGE_FAULT)
WRITE_FAULT = ("fault", Cause.WRITE_PAGE_FAULT)


# -- features and configuration ----------------------------------------------------------

def test_offered_features(dev):
    # VERSION_1 (bit 32), INPUT_RANGE, DOMAIN_RANGE, MAP_UNMAP, PROBE, MMIO, BYPASS_CONFIG;
    # not the legacy BYPASS (bit 3).
    assert dev.features == (1 << 32) | 0b111_0111


def test_config_for_sv48(dev):
    # 4 KiB | 64 KiB (Svnapot) | 2 MiB | 1 GiB | 512 GiB.
    assert dev.config_read(0, 8) == 0x80_4021_1000
    assert (dev.config_read(8, 8), dev.config_read(16, 8)) == (0, (1 << 47) - 1)
    assert (dev.config_read(24, 4), dev.config_read(28, 4)) == (0, 0xFFFF_FFFF)
    assert dev.config_read(32, 4) == 512
    assert dev.config_read(36, 1) == 0


def test_config_for_sv39():
    from iogate.hdl import Config
    host = HostIommu.on_model(Config(svpbmt=True, ddt_levels=2))
    dev = VirtioIommu([1], backend=host)
    assert dev.config_read(0, 8) == 0x4021_1000          # the reference's Sv39 value
    assert dev.config_read(16, 8) == (1 << 38) - 1


# -- ATTACH ------------------------------------------------------------------------------

def test_attach_then_dma_reaches_the_mapping(dev, host):
    assert attach(dev, 1, 8) == Status.OK
    assert map_(dev, 1, 0x10_0000, 0x10_FFFF, 0x40_0000) == Status.OK
    # PA = VA - virt_start + phys_start
    assert pa(host, 8, 0x10_1234) == 0x40_1234
    assert pa(host, 9, 0x10_1234) == DOMAIN_FAULT        # not attached, no bypass


def test_attach_reserved_must_be_zero(dev, host):
    assert status(dev, rq.Attach(1, 8, 0, b"\0\0\x01\0")) == Status.INVAL
    assert dev.attached(8) is None


def test_attach_unknown_flag(dev):
    assert attach(dev, 1, 8, flags=2) == Status.INVAL
    assert dev.attached(8) is None


def test_attach_unknown_endpoint(dev):
    assert attach(dev, 1, 11) == Status.NOENT


def test_attach_outside_domain_range(host):
    dev = VirtioIommu([8], backend=host, domain_range=(1, 100))
    assert attach(dev, 0, 8) == Status.RANGE
    assert attach(dev, 101, 8) == Status.RANGE
    assert attach(dev, 100, 8) == Status.OK


def test_two_endpoints_share_a_domain(dev, host):
    attach(dev, 1, 8)
    assert attach(dev, 1, 9) == Status.OK
    map_(dev, 1, 0x20_0000, 0x20_0FFF, 0x30_0000)
    assert pa(host, 8, 0x20_0010) == pa(host, 9, 0x20_0010) == 0x30_0010


def test_attach_moves_an_endpoint_and_destroys_its_old_domain(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    assert attach(dev, 2, 8) == Status.OK
    assert dev.attached(8) == 2
    assert pa(host, 8, 0x10_0000) == READ_FAULT          # domain 2 maps nothing
    assert map_(dev, 1, 0, 0xFFF, 0) == Status.NOENT     # domain 1 is gone


def test_attach_to_the_same_domain_keeps_it(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    assert attach(dev, 1, 8) == Status.OK
    assert pa(host, 8, 0x10_0000) == 0x40_0000


def test_bypass_domain_is_identity(dev, host):
    assert attach(dev, 5, 8, flags=AttachFlag.BYPASS) == Status.OK
    assert pa(host, 8, 0x1234_5678, "write") == 0x1234_5678
    assert map_(dev, 5, 0, 0xFFF, 0) == Status.INVAL
    assert unmap(dev, 5, 0, 0xFFF) == Status.INVAL


def test_bypass_flag_must_match_the_domain(dev, host):
    attach(dev, 5, 8, flags=AttachFlag.BYPASS)
    attach(dev, 1, 9)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    assert attach(dev, 5, 9) == Status.INVAL              # paging flag, bypass domain
    assert attach(dev, 1, 8, flags=AttachFlag.BYPASS) == Status.INVAL
    # Spec over QEMU: a rejected ATTACH leaves each endpoint where it was.
    assert dev.attached(9) == 1 and dev.attached(8) == 5
    assert pa(host, 9, 0x10_0000) == 0x40_0000
    assert pa(host, 8, 0x10_0000) == 0x10_0000


def test_attach_refuses_an_endpoint_whose_reserved_region_is_mapped(host):
    dev = VirtioIommu([8, 9], backend=host, reserved_regions={9: [(0x10_0000, 0x10_FFFF)]})
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    assert attach(dev, 1, 9) == Status.UNSUPP
    assert dev.attached(9) is None


# -- DETACH ------------------------------------------------------------------------------

def test_detach_rules(dev, host):
    attach(dev, 1, 8)
    assert detach(dev, 1, 11) == Status.NOENT
    assert detach(dev, 2, 8) == Status.INVAL              # not attached to domain 2
    assert detach(dev, 1, 9) == Status.INVAL              # 9 is not attached at all
    assert status(dev, rq.Detach(1, 8, b"\xff" * 8)) == Status.OK   # reserved ignored
    assert dev.attached(8) is None
    assert pa(host, 8, 0) == DOMAIN_FAULT


def test_last_detach_destroys_the_domain_and_its_mappings(dev, host):
    attach(dev, 1, 8)
    attach(dev, 1, 9)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    detach(dev, 1, 8)
    assert pa(host, 9, 0x10_0000) == 0x40_0000           # 9 still holds the domain
    assert pa(host, 8, 0x10_0000) == DOMAIN_FAULT
    detach(dev, 1, 9)
    assert map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x50_0000) == Status.NOENT
    attach(dev, 1, 8)                                     # the ID is reusable: a new domain
    assert pa(host, 8, 0x10_0000) == READ_FAULT
    assert map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x50_0000) == Status.OK
    assert pa(host, 8, 0x10_0000) == 0x50_0000


# -- MAP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start, end, phys", [
    (0x10_0800, 0x10_17FF, 0x40_0000),     # virt_start
    (0x10_0000, 0x10_0FFF, 0x40_0800),     # phys_start
    (0x10_0000, 0x10_0FFE, 0x40_0000),     # virt_end + 1
])
def test_map_alignment_gives_range(dev, start, end, phys):
    attach(dev, 1, 8)
    assert map_(dev, 1, start, end, phys) == Status.RANGE
    assert dev.mappings(1) == []


def test_map_overlap_gives_inval(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_FFFF, 0x40_0000)
    assert map_(dev, 1, 0x10_F000, 0x11_0FFF, 0x50_0000) == Status.INVAL
    assert map_(dev, 1, 0x0F_F000, 0x10_0FFF, 0x50_0000) == Status.INVAL
    assert map_(dev, 1, 0x11_0000, 0x11_0FFF, 0x50_0000) == Status.OK
    assert pa(host, 8, 0x10_F000) == 0x40_F000


def test_map_rejections(dev, host):
    attach(dev, 1, 8)
    assert map_(dev, 1, 0, 0xFFF, 0, flags=8) == Status.INVAL            # unknown flag
    assert map_(dev, 2, 0, 0xFFF, 0) == Status.NOENT                     # unknown domain
    assert map_(dev, 1, 0x2000, 0x0FFF, 0) == Status.INVAL               # end < start
    assert map_(dev, 1, 1 << 47, (1 << 47) + 0xFFF, 0) == Status.RANGE   # input_range
    assert map_(dev, 1, 0, 0xFFF, 0x10_0000_0000) == Status.RANGE        # host memory
    assert dev.mappings(1) == []


def test_map_over_the_msi_region_is_rejected(dev, host):
    attach(dev, 1, 8)
    assert map_(dev, 1, 0x80F_F000, 0x810_0FFF, 0x40_0000) == Status.INVAL
    assert map_(dev, 1, 0x810_0000, 0x810_0FFF, 0x40_0000) == Status.OK
    # The host maps the doorbell itself, IOVA = PA, as an MMIO page.
    r = host.model.translate(8, 0x800_0040, "write", report=False)
    assert not r.fault and r.pa == 0x800_0040 and r.pbmt == Pbmt.IO


def test_map_over_a_reserved_region_is_rejected(host):
    dev = VirtioIommu([8], backend=host, reserved_regions={8: [(0x10_0000, 0x10_FFFF)]})
    attach(dev, 1, 8)
    assert map_(dev, 1, 0x10_F000, 0x10_FFFF, 0x40_0000) == Status.INVAL


def test_map_permissions(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000, flags=MapFlag.READ)
    map_(dev, 1, 0x20_0000, 0x20_0FFF, 0x50_0000, flags=MapFlag.WRITE)
    map_(dev, 1, 0x30_0000, 0x30_0FFF, 0x60_0000, flags=0)
    assert pa(host, 8, 0x10_0000) == 0x40_0000
    assert pa(host, 8, 0x10_0000, "write") == WRITE_FAULT   # MUST NOT allow writes
    # RISC-V has no write-only leaf: WRITE alone maps read-write (the spec allows it).
    assert pa(host, 8, 0x20_0000, "write") == 0x50_0000
    assert pa(host, 8, 0x20_0000) == 0x50_0000
    assert pa(host, 8, 0x30_0000) == READ_FAULT             # a mapping with no access
    assert map_(dev, 1, 0x30_0000, 0x30_0FFF, 0) == Status.INVAL   # ...that still exists


def test_map_memory_types(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000, flags=MapFlag.READ | MapFlag.MMIO)
    map_(dev, 1, 0x20_0000, 0x20_0FFF, 0x50_0000, flags=MapFlag.READ)
    assert host.model.translate(8, 0x10_0000, "read").pbmt == Pbmt.IO
    assert host.model.translate(8, 0x20_0000, "read").pbmt == Pbmt.PMA


def test_large_map_uses_the_whole_range(dev, host):
    attach(dev, 1, 8)
    assert map_(dev, 1, 0x4000_0000, 0x4000_0000 + 5 * MIB - 1, 0x8000_0000) == Status.OK
    for offset in (0, 2 * MIB - 8, 4 * MIB + 0x1234, 5 * MIB - 1):
        assert pa(host, 8, 0x4000_0000 + offset) == 0x8000_0000 + offset
    assert pa(host, 8, 0x4000_0000 + 5 * MIB) == READ_FAULT


# -- bypass configuration ----------------------------------------------------------------

def test_bypass_config_for_unattached_endpoints(dev, host):
    attach(dev, 1, 8)
    assert pa(host, 9, 0x1000) == DOMAIN_FAULT
    dev.config_write(36, 1, 1)
    assert dev.config_read(36, 1) == 1
    assert pa(host, 9, 0x1000) == 0x1000                   # unattached: bypass
    assert pa(host, 8, 0x1000) == READ_FAULT               # attached: its domain
    detach(dev, 1, 8)
    assert pa(host, 8, 0x2000, "write") == 0x2000          # detached into bypass
    dev.config_write(36, 1, 0)
    assert pa(host, 9, 0x1000) == pa(host, 8, 0x1000) == DOMAIN_FAULT


def test_boot_bypass_and_reset(host):
    dev = VirtioIommu([8], backend=host, boot_bypass=True)
    assert dev.config_read(36, 1) == 1 and pa(host, 8, 0x5000) == 0x5000
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000)
    dev.reset()
    # Reset: no endpoint attached, no domain; bypass kept.
    assert dev.attached(8) is None and dev.config_read(36, 1) == 1
    assert pa(host, 8, 0x10_0000) == 0x10_0000
    assert map_(dev, 1, 0, 0xFFF, 0) == Status.NOENT


# -- framing -----------------------------------------------------------------------------

def test_unknown_type_and_unparseable_buffers_are_not_written(dev):
    assert dev.request(b"\x06\0\0\0" + bytes(32), 4) == b""
    assert dev.request(b"\0\0\0\0", 4) == b""
    assert dev.request(b"\x01\0", 4) == b""                    # no head
    assert dev.request(rq.Attach(1, 8).encode(), 3) == b""     # no room for the tail
    assert dev.attached(8) is None


def test_short_request_with_a_tail_is_inval(dev):
    written = dev.request(rq.Attach(1, 8).encode()[:12], 4)
    assert written == b"\x04\0\0\0"
    assert dev.attached(8) is None


def test_tail_is_the_end_of_the_writable_part(dev):
    written = dev.request(rq.Attach(1, 8).encode(), 12)
    assert written == bytes(8) + b"\0\0\0\0"
    assert dev.attached(8) == 1


# -- PROBE -------------------------------------------------------------------------------

def test_probe_reports_the_msi_region(dev):
    written = dev.request(rq.Probe(8).encode(), 512 + 4)
    assert len(written) == 516
    # RESV_MEM (type 1, length 20), subtype MSI, [0x800_0000, 0x80F_FFFF]; then zeros.
    assert written[:24] == (b"\x01\x00\x14\x00\x01\x00\x00\x00"
                            + bytes.fromhex("0000000800000000") + bytes.fromhex("ffff0f0800000000"))
    assert written[24:512] == bytes(488)
    assert written[512:] == b"\0\0\0\0"


def test_probe_with_reserved_regions(host):
    dev = VirtioIommu([8], backend=host, reserved_regions={8: [(0x1000, 0x1FFF)]}, probe_size=64)
    written = dev.request(rq.Probe(8).encode(), 68)
    assert written[:8] == b"\x01\x00\x14\x00\x00\x00\x00\x00"       # RESERVED first
    assert written[24:32] == b"\x01\x00\x14\x00\x01\x00\x00\x00"     # then MSI
    assert written[48:] == bytes(20)


def test_probe_errors(dev):
    written = dev.request(rq.Probe(11).encode(), 516)
    assert written[-4:] == b"\x06\0\0\0"                    # NOENT
    written = dev.request(rq.Probe(8).encode(), 100)        # properties < probe_size
    assert written == bytes(96) + b"\x04\0\0\0"             # INVAL, no property written
    assert dev.request(rq.Probe(8).encode()[:40], 516)[-4:] == b"\x04\0\0\0"


def test_probe_size_must_hold_the_properties(host):
    with pytest.raises(ValueError, match="the 1 properties of endpoint 0x8 do not fit "
                                         "probe_size 16"):
        VirtioIommu([8], backend=host, probe_size=16)


# -- events ------------------------------------------------------------------------------

def test_fault_events(dev, host):
    attach(dev, 1, 8)
    map_(dev, 1, 0x10_0000, 0x10_0FFF, 0x40_0000, flags=MapFlag.READ)
    host.model.translate(9, 0x7000, "read")                 # unattached
    host.model.translate(8, 0x20_0000, "read")              # unmapped
    host.model.translate(8, 0x10_0010, "write")             # read-only
    host.model.translate(8, 0x10_0010, "read")              # fine: no event
    events = [Fault.decode(e) for e in dev.events()]
    assert events == [
        Fault(FaultReason.DOMAIN, FaultFlag.READ | FaultFlag.ADDRESS, 9, 0x7000),
        Fault(FaultReason.MAPPING, FaultFlag.READ | FaultFlag.ADDRESS, 8, 0x20_0000),
        Fault(FaultReason.MAPPING, FaultFlag.WRITE | FaultFlag.ADDRESS, 8, 0x10_0010),
    ]
    assert dev.events() == []


def test_events_of_other_devices_are_kept_for_their_owner(host):
    a = VirtioIommu([8], backend=host)
    b = VirtioIommu([9], backend=host)
    host.model.translate(8, 0x1000, "read")
    host.model.translate(9, 0x2000, "write")
    assert [Fault.decode(e).endpoint for e in a.events()] == [8]
    assert [Fault.decode(e).address for e in b.events()] == [0x2000]


# -- construction ------------------------------------------------------------------------

def test_constructor_validation(host):
    with pytest.raises(TypeError, match="endpoint must be an integer, not '8'"):
        VirtioIommu(["8"], backend=host)
    with pytest.raises(ValueError, match=r"endpoints must be distinct, not \[8, 8\]"):
        VirtioIommu([8, 8], backend=host)
    with pytest.raises(ValueError, match="endpoint 0x10000 is not a device_id the IOMMU "
                                         "reaches"):
        VirtioIommu([1 << 16], backend=host)
    with pytest.raises(ValueError, match=r"reserved_regions names unknown endpoints \[3\]"):
        VirtioIommu([8], backend=host, reserved_regions={3: [(0, 1)]})
    VirtioIommu([8], backend=host)
    with pytest.raises(ValueError, match="endpoint 0x8 is already owned by another user"):
        VirtioIommu([8], backend=host)


def test_writable_size_must_be_an_integer(dev):
    with pytest.raises(TypeError, match="writable_size must be an integer"):
        dev.request(rq.Attach(1, 8).encode(), 4.0)

