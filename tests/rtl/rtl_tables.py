"""Page-table helpers shared by the cocotb test modules (not a test module itself)."""

V, R, W, U, A, D = 1, 2, 4, 16, 64, 128


def pte(ppn, flags):
    return ppn << 10 | flags


def sv39x4_map(mem, root, pages, alloc):
    """Map guest pages to system pages in the Sv39x4 tables at PPN ``root`` (a 16 KiB root:
    VPN[2] is 11 bits), into ``mem`` ({address: doubleword}): ``pages`` is (GPPN, SPPN)
    pairs, mapped V R W U A D (second-stage leaves need U=1); new tables take PPNs from
    ``alloc`` (a list, consumed)."""
    for gppn, sppn in pages:
        table = root << 12
        for level, width in ((2, 11), (1, 9)):
            addr = table + ((gppn >> (9 * level)) & ((1 << width) - 1)) * 8
            if addr not in mem:
                mem[addr] = pte(alloc.pop(0), V)
            table = (mem[addr] >> 10) << 12
        mem[table + (gppn & 0x1FF) * 8] = pte(sppn, V | R | W | U | A | D)
    return mem
