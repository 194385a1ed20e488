"""Property tests of MSI translation (hypothesis): the MRIF update changes exactly the
pending bit of the identity (AIA "Memory-resident interrupt files": identity D is bit
D mod 64 of the little-endian doubleword at MRIF + (D / 64) * 16, i.e. bit D mod 8 of byte
(D / 64) * 16 + (D mod 64) / 8), discards follow A[11:3] and D[31:11], and whatever the
MSI PTE holds, ``translate`` gives one of the answers ``allowed`` lists and ``allowed``
changes no memory.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from iogate.hdl.formats import Cause

from model_tables import Queues
from msi_tables import MSI_GPA, mrif_pte, msi_rig, write_msi_pte

MRIF = 0x30_0200
NOTICE = 0x4_0000


def _rig(pte_words, cache=False):
    rig = msi_rig(cache=cache)
    rig.q = Queues(rig)
    write_msi_pte(rig, rig.msi_pt, 0, pte_words)
    return rig


@given(st.integers(0, 2047), st.binary(min_size=512, max_size=512))
@settings(max_examples=150, deadline=None)
def test_mrif_update_sets_exactly_one_bit(identity, before):
    rig = _rig(mrif_pte(MRIF, NOTICE >> 12, 0x123))
    rig.mem.write(MRIF, before)
    assert rig.iommu.translate(5, MSI_GPA, "write", data=identity).absorbed
    after = rig.mem.read(MRIF, 512)
    expected = bytearray(before)
    expected[(identity // 64) * 16 + (identity % 64) // 8] |= 1 << (identity % 8)
    assert after == bytes(expected)
    assert rig.mem.read(NOTICE, 4) == b"\x23\x01\x00\x00"


@given(st.integers(0, (1 << 32) - 1), st.integers(0, 0x3FF).map(lambda w: w * 4))
@settings(max_examples=150, deadline=None)
def test_discard_rule(data, offset):
    rig = _rig(mrif_pte(MRIF, NOTICE >> 12, 0x123))
    r = rig.iommu.translate(5, MSI_GPA + offset, "write", data=data)
    assert r.absorbed
    identity = data if not offset & 4 else int.from_bytes(data.to_bytes(4, "big"), "little")
    recorded = offset in (0, 4) and identity < 2048
    assert (rig.mem.read64(NOTICE) == 0x123) == recorded
    assert any(rig.mem.read(MRIF, 512)) == recorded


ACCESS = st.sampled_from(["read", "write", "execute"])


@st.composite
def pte_words(draw):
    """MSI PTEs near the valid encodings: V, M and C drawn, then a few random bits."""
    dw0 = draw(st.integers(0, (1 << 64) - 1)) & draw(st.sampled_from(
        [0, (1 << 64) - 1, ((1 << 44) - 1) << 10, ((1 << 47) - 1) << 7]))
    dw0 |= draw(st.sampled_from([0, 1])) | draw(st.integers(0, 3)) << 1
    if draw(st.booleans()):
        dw0 |= 1 << draw(st.integers(3, 63))
    dw1 = draw(st.integers(0, (1 << 64) - 1)) & draw(st.sampled_from(
        [0, ((1 << 44) - 1) << 10 | 0x3FF, (1 << 64) - 1]))
    return dw0, dw1


@given(pte_words(), pte_words(), ACCESS, st.integers(0, 0xFFF), st.booleans(),
       st.integers(0, 4095))
@settings(max_examples=200, deadline=None)
def test_translate_is_allowed_and_allowed_has_no_side_effects(first, second, access, offset,
                                                              word, data):
    # MRIF/notice addresses in the PTEs are wherever the random bits put them.
    rig = _rig(first, cache=True)
    kw = dict(word=word, data=data if access == "write" else None)
    iova = MSI_GPA + offset
    rig.iommu.translate(5, iova, access, **kw)          # may cache the first PTE
    write_msi_pte(rig, rig.msi_pt, 0, second)
    pages = dict(rig.mem._pages)
    snapshot = {base: bytes(page) for base, page in pages.items()}
    allowed = rig.iommu.allowed(5, iova, access, **kw)
    assert {base: bytes(page) for base, page in rig.mem._pages.items()} == snapshot
    got = rig.iommu.translate(5, iova, access, **kw)
    assert got in allowed
    for r in allowed:
        assert r.fault or r.absorbed or not r.x
        assert r.cause in (0, Cause.INSTRUCTION_ACCESS_FAULT, Cause.TRANSACTION_TYPE_DISALLOWED,
                           Cause.MSI_PTE_NOT_VALID, Cause.MSI_PTE_MISCONFIGURED,
                           Cause.MRIF_ACCESS_FAULT, Cause.MSI_PTE_LOAD_ACCESS_FAULT)
