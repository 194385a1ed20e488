"""iogate.hdl.pdtc: the PC cache keeps only ``Config.process_id_bits`` of each process_id.

Expected behaviour from the spec (reference N.1.2, "Process to translate an IOVA" step 7c):
with PD8 the deepest mode, a process_id of 9 bits or more is 260 whatever the PC cache
holds, so a cached PC whose low 8 PID bits match (0x5A for 0x15A) is never used for it and
the PDT is not read. Tables are those of test_pdt_pipeline (PID 0x5A's PC at
0x30_0000 + 0x5A*16, ENS=0).
"""

import pytest

from iogate.hdl.pdtc import ProcessContextCache

from test_pdt_pipeline import CONFIG, PC_5A, Harness


def test_a_wide_pid_aliasing_a_cached_pc_is_260_without_a_pdt_read():
    assert CONFIG.process_id_bits == 8

    async def body(ctx, h):
        # A user request fills the PC cache with PID 0x5A's PC (read once).
        assert (await h.request(ctx, pid=0x5A))[0] is None
        assert PC_5A in h.reads
        mark = len(h.reads)
        # 0x15A matches 0x5A in the 8 PID bits kept: still 260, nothing read (the DC was
        # cached, so the answer took no walk: hit).
        assert await h.request(ctx, pid=0x15A) == (260, None, True)
        assert await h.request(ctx, pid=0xF5A, priv=1) == (260, None, True)
        assert h.since(mark) == []
        # The cached PC still answers its own PID without reading the PDT again.
        assert (await h.request(ctx, pid=0x5A))[0] is None
        assert PC_5A not in h.since(mark)
    Harness().run(body)


@pytest.mark.parametrize("pid_bits", [0, 21, True, "8"])
def test_pid_bits_out_of_range_is_refused(pid_bits):
    with pytest.raises(ValueError, match="pid_bits"):
        ProcessContextCache(4, pid_bits=pid_bits)
