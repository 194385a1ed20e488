"""The host layer the front-ends share: protections to PTEs, domains, ownership, faults,
and its small pieces (interval map, ID allocator, guest-context and command checks)."""

import errno

import pytest

from iogate.hdl import Config, bits
from iogate.hdl.formats import IOSATP, IOTINVAL, TC, Cause, IosatpMode, Pbmt

from iogate.firmware import commands
from iogate.firmware.driver import Iommu

from iogate.cosim.host.core import (
    BLOCKED,
    IDENTITY,
    MSI_WINDOW,
    HostIommu,
    Prot,
    pte_attributes,
)
from iogate.cosim.host.ids import IdAllocator, IdsExhausted
from iogate.cosim.host.intervals import IntervalMap
from iogate.cosim.host.iommufd.nesting import (
    NestingError,
    check_guest_context,
    rewrite_invalidation,
)


@pytest.mark.parametrize("prot, svpbmt, expected", [
    (Prot.READ, True, (True, False, True, Pbmt.NC)),
    (Prot.READ | Prot.CACHE, True, (True, False, True, Pbmt.PMA)),
    (Prot.WRITE | Prot.CACHE, True, (True, True, True, Pbmt.PMA)),   # write-only -> RW
    (Prot.READ | Prot.NOEXEC | Prot.MMIO, True, (True, False, False, Pbmt.IO)),
    (Prot.READ | Prot.MMIO, False, (True, False, True, Pbmt.PMA)),
    (Prot.READ, False, (True, False, True, Pbmt.PMA)),
])
def test_pte_attributes(prot, svpbmt, expected):
    assert pte_attributes(prot, svpbmt) == expected


def test_paging_domain_holds_the_msi_window(host):
    domain = host.paging_domain()
    t = domain.lookup(MSI_WINDOW[0])
    assert t.pa == MSI_WINDOW[0] and t.w and not t.x and t.pbmt == Pbmt.IO
    assert domain.lookup(MSI_WINDOW[1]).pa == MSI_WINDOW[1]
    assert domain.lookup(MSI_WINDOW[1] + 1) is None


def test_domains_get_distinct_tags_and_free_them(host):
    a, b = host.paging_domain(), host.paging_domain()
    assert a.pscid != b.pscid and a.pscid > 0
    p = host.parent_domain()
    assert p.gscid > 0 and p.aperture == (0, (1 << 50) - 1)
    host.free_domain(a)
    host.free_domain(p)
    assert not a.alive and not p.alive


def test_free_domain_refuses_a_domain_in_use(host):
    d = host.paging_domain()
    host.attach(5, d)
    with pytest.raises(ValueError, match=r"devices \[5\] are still attached"):
        host.free_domain(d)
    p = host.parent_domain()
    host.nested_domain(p, fsc=0)
    with pytest.raises(ValueError, match="nested domains still use this parent"):
        host.free_domain(p)


def test_attach_switches_what_dma_gets(host):
    d = host.paging_domain()
    d.map(0x10_0000, 0x40_0000, 0x1000, Prot.READ | Prot.CACHE)
    host.attach(5, d)
    assert host.model.translate(5, 0x10_0123, "read").pa == 0x40_0123
    host.attach(5, IDENTITY)
    assert host.model.translate(5, 0x10_0123, "read").pa == 0x10_0123
    host.attach(5, BLOCKED)
    assert host.model.translate(5, 0, "read").cause == Cause.DDT_ENTRY_NOT_VALID
    assert host.domain_of(5) is BLOCKED and not d.devices


def test_unmap_is_invalidated_before_it_returns(host):
    d = host.paging_domain()
    host.attach(5, d)
    d.map(0x20_0000, 0x60_0000, 0x20_0000, Prot.READ)
    assert host.model.translate(5, 0x30_0000, "read").pa == 0x70_0000     # IOTLB filled
    d.unmap(0x20_0000, 0x20_0000)
    assert all(r.fault for r in host.model.allowed(5, 0x30_0000, "read"))


def test_ownership(host):
    a, b = object(), object()
    assert host.claim(5, a) and host.claim(5, a)
    assert not host.claim(5, b)
    with pytest.raises(ValueError, match="device 0x5 is not owned by"):
        host.release(5, b)
    host.release(5, a)
    assert host.owner_of(5) is None and host.claim(5, b)


def test_faults_are_routed_to_their_owner(host):
    for did in (5, 6, 5):
        host.model.translate(did, 0x1000 * did, "read")
    assert [r.did for r in host.faults([5])] == [5, 5]
    assert [r.iotval for r in host.faults([6])] == [0x6000]
    assert host.faults([5, 6]) == []


def test_host_construction():
    with pytest.raises(TypeError, match="driver must be a iogate.firmware.driver.Iommu"):
        HostIommu(object())
    host = HostIommu.on_model()
    with pytest.raises(ValueError, match="the driver must be initialised"):
        HostIommu(Iommu(host.bus, host.driver.alloc))
    with pytest.raises(ValueError, match="msi_window must be 4 KiB aligned"):
        HostIommu(host.driver, msi_window=(0x1000, 0x1800))
    assert HostIommu.of(host) is host
    assert isinstance(HostIommu.of(host.driver), HostIommu)
    with pytest.raises(TypeError, match="backend must be None, a HostIommu"):
        HostIommu.of(42)


def test_host_over_a_plain_bus():
    model_host = HostIommu.on_model()
    host = HostIommu.of(model_host.bus)     # a new driver, initialised over the same bus
    assert host.model is None and host.valid_device_id(0xFFFF)
    assert not host.valid_device_id(1 << 16) and not host.valid_device_id(True)


# -- pieces -------------------------------------------------------------------------------

def test_interval_map():
    m = IntervalMap()
    a = m.add(10, 19, "a")
    m.add(30, 39, "b")
    with pytest.raises(ValueError, match="overlaps an existing area"):
        m.add(15, 31)
    with pytest.raises(ValueError, match="an area needs start <= end"):
        m.add(5, 4)
    assert [x.value for x in m.overlapping(0, 100)] == ["a", "b"]
    assert m.overlapping(20, 29) == [] and m.find(39).value == "b" and m.find(40) is None
    assert [x.value for x in m.split_by(15, 35)] == ["a", "b"]
    assert m.split_by(10, 39) == [] and [x.value for x in m.covered(0, 35)] == ["a"]
    m.remove(a)
    assert [x.value for x in m] == ["b"] and a.size == 10
    with pytest.raises(ValueError, match="no area"):
        m.remove(a)


def test_id_allocator_round_robin():
    ids = IdAllocator(1, 3)
    assert [ids.alloc(), ids.alloc()] == [1, 2]
    ids.free(1)
    assert ids.alloc() == 3 and ids.alloc() == 1       # 1 comes back last
    with pytest.raises(IdsExhausted, match=r"all IDs in \[1, 3\] are in use"):
        ids.alloc()
    with pytest.raises(ValueError, match="ID 7 is not in use"):
        ids.free(7)
    with pytest.raises(ValueError, match=r"first \(3\) must not exceed last \(2\)"):
        IdAllocator(3, 2)


def test_rewrite_invalidation():
    # Guest: VMA, PSCID 7, PSCV, AV, addr 0x1000 (reference example: dword0 0x1_0000_7401,
    # dword1 0x400). Host: GV=1 with GSCID 0x22, PSCID 0x99.
    raw = commands.to_bytes(commands.iotinval_vma(pscid=7, addr=0x1000))
    assert int.from_bytes(raw, "little") == 0x400 << 64 | 0x1_0000_7401
    cmd = rewrite_invalidation(raw, pscid=0x99, gscid=0x22)
    assert cmd & (1 << 64) - 1 == 0x1_0000_7401 & ~(0xFFFFF << 12) | 0x99 << 12 | 1 << 33 \
        | 0x22 << 44
    assert cmd >> 64 == 0x400
    all_spaces = rewrite_invalidation(commands.to_bytes(commands.iotinval_vma()), pscid=5,
                                      gscid=3)
    assert bits.get(IOTINVAL, all_spaces, "pscid") == 0 and bits.get(IOTINVAL, all_spaces, "gv")


@pytest.mark.parametrize("cmd, code", [
    (commands.iofence_c(), errno.EOPNOTSUPP),
    (commands.iotinval_gvma(gscid=1), errno.EOPNOTSUPP),
    (commands.iodir_inval_ddt(), errno.EOPNOTSUPP),
    (commands.iotinval_vma() | 1 << 11, errno.EINVAL),
    (commands.iotinval_vma() | 1 << 64, errno.EINVAL),            # dword1 reserved bit 0
])
def test_rewrite_refusals(cmd, code):
    with pytest.raises(NestingError) as e:
        rewrite_invalidation(cmd.to_bytes(16, "little"), pscid=1, gscid=1)
    assert e.value.errno == code


def test_guest_context_checks():
    ok = bits.pack(TC, v=1, dtf=1)
    check_guest_context(ok, 0, bits.pack(IOSATP, mode=IosatpMode.SV48, ppn=5), sv48=True)
    with pytest.raises(NestingError) as e:
        check_guest_context(ok, 0, bits.pack(IOSATP, mode=IosatpMode.SV48), sv48=False)
    assert e.value.errno == errno.EOPNOTSUPP


def test_free_domain_names_rid_and_pasid_attachments():
    # One domain attached as device 7's RID domain and as PASIDs of devices 3 and 7: the
    # refusal lists them by device, the RID before its PASIDs (ints and pairs together).
    host = HostIommu.on_model(Config.full().replace(pd_levels=1))
    d = host.paging_domain()
    host.attach(7, d)
    host.attach_pasid(7, 5, d)
    host.attach_pasid(3, 2, d)
    with pytest.raises(ValueError, match=r"devices \[\(3, 2\), 7, \(7, 5\)\] are still"):
        host.free_domain(d)
    assert d.alive
