"""Hypothesis properties: random device contexts, PTEs, commands and register writes never
make the model raise, and every answer is one the spec allows.

The leaf properties check both ways against the Privileged spec's leaf rules (V, no W
without R, reserved bits 60:54, PBMT, Svnapot, U, R/W/X, A, D): a success must satisfy
all of them and carry the leaf's PPN, permissions and PBMT; a fault must be the page fault
of the access type and break at least one of them.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iogate.hdl import Config, bits
from iogate.hdl.formats import TC
from iogate.hdl.regs import IommuMode, Offset

from iogate.cosim.model.access import refusal
from model_tables import FULL, URWX, Queues, Rig, dc_words, iohgatp, iosatp, pte, ta

SUBSET_CAUSES = {1, 5, 7, 12, 13, 15, 20, 21, 23, 256, 257, 258, 259, 260}
ACCESSES = ("read", "write", "execute")
PAGE_FAULT = {"read": 13, "write": 15, "execute": 12}
GUEST_PAGE_FAULT = {"read": 21, "write": 23, "execute": 20}

settings.register_profile("model", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("model")

u64 = st.integers(0, 2**64 - 1)
VA = 0x4000_5000

#: PTE words biased towards well-formed leaves, so that both outcomes are common: random
#: flags (bits 7:0), a PPN that is often aligned or a NAPOT encoding, reserved bits mostly
#: clear, any PBMT, any N.
pte_words = st.builds(
    lambda flags, rsw, ppn, rsvd, pbmt, n: (flags | rsw << 8 | ppn << 10 | rsvd << 54
                                            | pbmt << 61 | n << 63),
    # v|r|u|a (0x53), +w|d (0xD7), +x (0xDF), everything (0xFF), x-only user (0x59)...
    st.one_of(st.integers(0, 255), st.sampled_from([0x53, 0xD7, 0xDF, 0xFF, 0x59, 0x5B])),
    st.integers(0, 3),
    st.one_of(st.integers(0, 2**44 - 1), st.integers(0, 2**26 - 1).map(lambda p: p << 18),
              st.integers(0, 2**35 - 1).map(lambda p: p << 9),
              st.integers(0, 2**40 - 1).map(lambda p: p << 4 | 0x8)),
    st.sampled_from([0, 0, 0, 1, 0x40]), st.sampled_from([0, 0, 1, 2, 3]), st.integers(0, 1))


def leaf_ok(word, access, level, svpbmt):
    """Every Privileged-spec condition for ``word`` to grant ``access`` at ``level``."""
    f = {name: (word >> off) & 1 for name, off in
         (("v", 0), ("r", 1), ("w", 2), ("x", 3), ("u", 4), ("a", 6), ("d", 7), ("n", 63))}
    ppn = (word >> 10) & (2**44 - 1)
    pbmt = (word >> 61) & 3
    rsvd = (word >> 54) & 0x7F
    need = {"read": f["r"], "write": f["w"] and f["d"], "execute": f["x"]}[access]
    napot_ok = not f["n"] or (level == 0 and ppn & 0xF == 0x8)
    pbmt_ok = pbmt == 0 or (svpbmt and pbmt != 3)
    aligned = not ppn & ((1 << (9 * level)) - 1)
    return (f["v"] and not (f["w"] and not f["r"]) and not rsvd and pbmt_ok and napot_ok
            and f["u"] and f["a"] and need and aligned and (f["r"] or f["x"]))


@given(word=pte_words, access=st.sampled_from(ACCESSES), level=st.sampled_from([0, 1, 2]),
       svpbmt=st.booleans())
def test_random_first_stage_leaf(word, access, level, svpbmt):
    rig = Rig(Config(svpbmt=svpbmt))
    root, s = rig.page(), rig.page()
    rig.write_dc(root, 1, dc_words(ta=ta(1), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    rig.map(s, VA, word, level=level)
    r = rig.iommu.translate(1, VA + 0x123, access)
    is_leaf = word & 1 and (word >> 1) & 0x5
    if r.fault:
        assert r.cause == PAGE_FAULT[access]
        assert not (is_leaf and leaf_ok(word, access, level, svpbmt))
        return
    assert is_leaf and leaf_ok(word, access, level, svpbmt)
    ppn = (word >> 10) & (2**44 - 1)
    if level:
        expected = ppn | ((VA >> 12) & ((1 << (9 * level)) - 1))
    elif word >> 63:
        expected = (ppn & ~0xF) | ((VA >> 12) & 0xF)
    else:
        expected = ppn
    assert r.ppn == expected and r.pa == expected << 12 | 0x123
    assert (r.r, r.w, r.x) == (bool(word & 2), bool(word & 4 and word & 128), bool(word & 8))
    assert r.pbmt == (word >> 61) & 3
    assert rig.iommu.allowed(1, VA + 0x123, access) == {r}


@given(word=pte_words, access=st.sampled_from(ACCESSES))
def test_random_second_stage_leaf(word, access):
    rig = Rig(FULL)
    root, g = rig.page(), rig.page(4, align=4)
    rig.write_dc(root, 1, dc_words(iohgatp=iohgatp(8, g, 2)))
    rig.set_ddtp(IommuMode.LVL1, root)
    rig.map(g, VA, word, level=0, x4=True)
    r = rig.iommu.translate(1, VA + 0x123, access)
    is_leaf = word & 1 and (word >> 1) & 0x5
    if r.fault:
        assert r.cause == GUEST_PAGE_FAULT[access]
        assert r.iotval2 == VA + 0x120                        # GPA >> 2 << 2, not implicit
        assert not (is_leaf and leaf_ok(word, access, 0, True))
    else:
        assert is_leaf and leaf_ok(word, access, 0, True)


@given(nonleaf_word=st.one_of(u64, pte_words), access=st.sampled_from(ACCESSES))
def test_random_nonleaf_entry(nonleaf_word, access):
    rig = Rig(FULL)
    root, s = rig.page(), rig.page()
    rig.write_dc(root, 1, dc_words(ta=ta(1), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    rig.w64((s << 12) + 1 * 8, nonleaf_word)                  # VPN[2] of VA is 1
    r = rig.iommu.translate(1, VA, access)
    assert r.cause in SUBSET_CAUSES or not r.fault
    if r.fault:
        assert r.cause in (PAGE_FAULT[access], {"read": 5, "write": 7, "execute": 1}[access])


@given(words=st.tuples(u64, u64, u64, u64), access=st.sampled_from(ACCESSES),
       iova=u64, valid=st.booleans())
def test_random_device_context(words, access, iova, valid):
    rig = Rig(FULL)
    root = rig.page()
    tc = words[0] | 1 if valid else words[0]
    rig.write_dc(root, 9, (tc, *words[1:]))
    rig.set_ddtp(IommuMode.LVL1, root)
    r = rig.iommu.translate(9, iova, access)
    assert not r.fault or r.cause in SUBSET_CAUSES
    if not tc & 1:
        assert r.cause == 258
    elif tc & bits.reserved_mask(TC):
        assert r.cause == 259
    assert r in rig.iommu.allowed(9, iova, access)


@given(cmds=st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=6))
def test_random_commands(cmds):
    rig = Rig(FULL)
    rig.set_ddtp(IommuMode.LVL2, rig.page())
    q = Queues(rig)
    q.submit(*cmds)
    csr = q.cqcsr
    stopped = csr & (1 << 10 | 1 << 8)
    assert stopped or q.cqh == len(cmds)
    if stopped:
        assert q.cqh < len(cmds)


_OFFSETS = [o for o in Offset if o not in (Offset.MSI_CFG_TBL,)] + [0x300, 0x2B0]


@given(writes=st.lists(st.tuples(st.sampled_from(_OFFSETS), st.sampled_from([4, 8]), u64),
                       max_size=8))
def test_random_register_writes(writes):
    rig = Rig(FULL)
    caps = rig.iommu.mmio_read(Offset.CAPABILITIES, 8)
    for offset, size, value in writes:
        if refusal(offset, size):         # misaligned, or 8 bytes over two 4-byte registers
            size = 4
        rig.iommu.mmio_write(offset, size, value & ((1 << (8 * size)) - 1))
        rig.iommu.process_commands()
    assert rig.iommu.mmio_read(Offset.CAPABILITIES, 8) == caps
    assert rig.iommu.mmio_read(Offset.FCTL, 4) == 0x2
    assert rig.iommu.mmio_read(Offset.DDTP, 8) & 0xF in (0, 1, 2, 3, 4)
    assert rig.iommu.mmio_read(Offset.DDTP, 8) & (1 << 4 | 0x3E0) == 0
    assert rig.iommu.mmio_read(Offset.TR_REQ_CTL, 8) & 1 == 0


@given(s_word=pte_words, g_word=pte_words, access=st.sampled_from(ACCESSES))
def test_random_two_stage(s_word, g_word, access):
    rig = Rig(FULL)
    root, g = rig.page(), rig.page(4, align=4)
    # Guest tables in GPA [0, 1 GiB) mapped 1:1 by a 1 GiB leaf; g_word maps GPA 1 GiB+.
    rig.map(g, 0, pte(0, **URWX), level=2, x4=True)
    s = rig.page()
    rig.write_dc(root, 1, dc_words(iohgatp=iohgatp(8, g, 2), ta=ta(1), fsc=iosatp(8, s)))
    rig.set_ddtp(IommuMode.LVL1, root)
    rig.map(s, VA, pte(0x40000 + 5, **URWX) if s_word & 1 else s_word)
    rig.map(g, 0x4000_0000, g_word, level=1, x4=True)
    r = rig.iommu.translate(1, VA, access)
    assert not r.fault or r.cause in SUBSET_CAUSES
    if r.fault and r.cause == GUEST_PAGE_FAULT[access]:
        assert r.iotval2 & 3 in (0, 1) and not r.iotval2 & 2
    assert r in rig.iommu.allowed(1, VA, access)
