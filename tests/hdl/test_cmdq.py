"""iogate.hdl.cmdq: the command-queue engine alone, with a memory responder and fake registers.

Commands are written here as the spec's numbers (RISC-V IOMMU spec "Command-Queue (CQ)"),
worked by hand:

* opcode 6:0 (IOTINVAL 1, IOFENCE 2, IODIR 3, ATS 4), func3 9:7;
* IOTINVAL: AV 10, PSCID 31:12, PSCV 32, GV 33, GSCID 59:44, dword1 ADDR[63:12] in 61:10;
  reserved 11, 43:34 (NL is 34), 63:60, dword1 9:0 (S is 9) and 63:62;
* IOFENCE.C: AV 10, WSI 11, PR 12, PW 13, DATA 63:32, dword1 ADDR[63:2]; reserved 31:14
  and dword1 63:62;
* IODIR: PID 31:12, DV 33, DID 63:40; reserved 11:10, 32, 39:34 and all of dword1.

The queue base is PPN 0x300 (0x30_0000); command ``i`` is at 0x30_0000 + 16 * i.
"""

import pytest
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.cmdq import CommandQueue
from iogate.hdl.iotlb import InvalKind
from iogate.hdl.regs import Igs

BASE_PPN = 0x300
OFF, BARE, LVL1, LVL2, LVL3 = 0, 1, 2, 3, 4


def iotinval(func3=0, *, av=0, pscid=0, pscv=0, gv=0, gscid=0, addr=0, extra0=0, extra1=0):
    return (1 | func3 << 7 | av << 10 | pscid << 12 | pscv << 32 | gv << 33 | gscid << 44
            | extra0, (addr >> 12) << 10 | extra1)


def iofence(*, av=0, wsi=0, pr=0, pw=0, data=0, addr=0, extra0=0, extra1=0, func3=0):
    return (2 | func3 << 7 | av << 10 | wsi << 11 | pr << 12 | pw << 13 | data << 32 | extra0,
            addr >> 2 | extra1)


def iodir(func3=0, *, pid=0, dv=0, did=0, extra0=0, extra1=0):
    return 3 | func3 << 7 | pid << 12 | dv << 33 | did << 40 | extra0, extra1


def vma(**kw):
    return dict(kind=InvalKind.VMA, gv=0, av=0, pscv=0, gscid=0, pscid=0, vpn=0) | kw


def gvma(**kw):
    return dict(kind=InvalKind.GVMA, gv=0, av=0, pscv=0, gscid=0, pscid=0, vpn=0) | kw


class Harness:
    """The engine, a memory of doublewords and the command-queue registers in Python.

    ``run`` follows ``cqen & cqon & no stopping error``: the register file's behaviour,
    reduced to what the engine sees.
    """

    def __init__(self, commands, *, entries=8, head=0, mode=LVL1, config=Config(),
                 fetch_errors=(), store_errors=(), fctl_wsi=1):
        self.dut = CommandQueue(config)
        self.fctl_wsi = fctl_wsi
        self.entries = entries
        self.mem = {}
        for i, (dw0, dw1) in commands.items():
            self.mem[(BASE_PPN << 12) + 16 * i] = dw0
            self.mem[(BASE_PPN << 12) + 16 * i + 8] = dw1
        self.head = head
        self.tail = head
        self.mode = mode
        self.run_bit = 1
        self.fetch_errors = set(fetch_errors)
        self.store_errors = set(store_errors)
        self.fetches = []
        self.stores = []                  # (addr, data, strb)
        self.events = []                  # ("iotlb", fields) / ("ddtc", fields) / strobes

    def submit(self, n):
        self.tail = (self.tail + n) % self.entries

    def run(self, body):
        dut = self.dut
        done = []

        async def registers(ctx):
            regs = dut.regs
            while True:
                ctx.set(regs.ppn, BASE_PPN)
                ctx.set(regs.head, self.head)
                ctx.set(regs.tail, self.tail)
                ctx.set(regs.run, self.run_bit)
                ctx.set(dut.iommu_mode, self.mode)
                if hasattr(dut, "fctl_wsi"):
                    ctx.set(dut.fctl_wsi, self.fctl_wsi)
                ctx.set(dut.iotlb_inval.ready, 1)
                ctx.set(dut.ddtc_inval.ready, 1)
                _, _, adv, mf, ill, fw, iv, ip, dv, dp = await ctx.tick().sample(
                    regs.advance, regs.set_cqmf, regs.set_cmd_ill, regs.set_fence_w_ip,
                    dut.iotlb_inval.valid, dut.iotlb_inval.payload,
                    dut.ddtc_inval.valid, dut.ddtc_inval.payload)
                if iv:
                    self.events.append(("iotlb", {k: getattr(ip, k) for k in
                                                  ("kind", "gv", "av", "pscv", "gscid",
                                                   "pscid", "vpn")}))
                if dv:
                    self.events.append(("ddtc", {"all": dp.all, "device_id": dp.device_id}))
                if fw:
                    self.events.append("fence_w_ip")
                if mf:
                    self.events.append(("cqmf", self.head))
                    self.run_bit = 0
                if ill:
                    self.events.append(("cmd_ill", self.head))
                    self.run_bit = 0
                if adv:
                    self.head = (self.head + 1) % self.entries

        async def fetch(ctx):
            port = dut.fetch
            while True:
                ctx.set(port.req.ready, 1)
                _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
                if not valid:
                    continue
                ctx.set(port.req.ready, 0)
                self.fetches.append(req.addr)
                ctx.set(port.resp.payload, {"data": self.mem.get(req.addr, 0),
                                            "err": req.addr in self.fetch_errors})
                ctx.set(port.resp.valid, 1)
                await ctx.tick().until(port.resp.ready)
                ctx.set(port.resp.valid, 0)

        async def store(ctx):
            port = dut.store
            while True:
                ctx.set(port.req.ready, 1)
                _, _, valid, req = await ctx.tick().sample(port.req.valid, port.req.payload)
                if not valid:
                    continue
                ctx.set(port.req.ready, 0)
                self.stores.append((req.addr, req.data, req.strb))
                ctx.set(port.resp.payload, {"err": req.addr in self.store_errors})
                ctx.set(port.resp.valid, 1)
                await ctx.tick().until(port.resp.ready)
                ctx.set(port.resp.valid, 0)

        async def testbench(ctx):
            await body(ctx, self)
            done.append(True)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(registers, background=True)
        sim.add_testbench(fetch, background=True)
        sim.add_testbench(store, background=True)
        sim.add_testbench(testbench)
        sim.run()
        assert done

    async def settle(self, ctx, cycles=40):
        for _ in range(cycles):
            await ctx.tick()


def cmd_addr(i):
    return (BASE_PPN << 12) + 16 * i


# (name, command, iommu_mode, expected events, expected stores)
ONE_COMMAND = [
    # An example worked by hand from the IOTINVAL layout: VMA, PSCID=7, AV, PSCV, ADDR 0x1000 ->
    # dword0 0x1_0000_7401, dword1 0x400.
    ("vma_example", (0x1_0000_7401, 0x400), LVL1,
     [("iotlb", vma(av=1, pscv=1, pscid=7, vpn=1))], []),
    ("vma_all", iotinval(), LVL1, [("iotlb", vma())], []),
    ("vma_pscid", iotinval(pscv=1, pscid=0xFFFFF), LVL1,
     [("iotlb", vma(pscv=1, pscid=0xFFFFF))], []),
    ("vma_addr", iotinval(av=1, addr=0x7F_FFFF_F000), LVL1,
     [("iotlb", vma(av=1, vpn=0x7FFFFFF))], []),
    ("vma_gscid", iotinval(gv=1, gscid=0xBEEF), LVL1, [("iotlb", vma(gv=1, gscid=0xBEEF))], []),
    ("vma_gv_av_pscv", iotinval(gv=1, gscid=3, av=1, pscv=1, pscid=9, addr=0x4000_0000),
     LVL1, [("iotlb", vma(gv=1, gscid=3, av=1, pscv=1, pscid=9, vpn=0x40000))], []),
    # ADDR[63:12] beyond the 27 VPN bits the IOTLB keeps: cut (an invalid address may
    # invalidate anything).
    ("vma_wide_addr", iotinval(av=1, addr=1 << 50 | 0x5000), LVL1,
     [("iotlb", vma(av=1, vpn=0x5))], []),
    ("gvma_all", iotinval(1), LVL1, [("iotlb", gvma())], []),
    ("gvma_gscid", iotinval(1, gv=1, gscid=5), LVL1, [("iotlb", gvma(gv=1, gscid=5))], []),
    ("gvma_gpa", iotinval(1, gv=1, gscid=5, av=1, addr=0x8000_0000), LVL1,
     [("iotlb", gvma(gv=1, gscid=5, av=1, vpn=0x80000))], []),
    ("inval_ddt_all", iodir(), LVL1, [("ddtc", {"all": 1, "device_id": 0})], []),
    ("inval_ddt_one", iodir(dv=1, did=0x45), LVL1, [("ddtc", {"all": 0, "device_id": 0x45})],
     []),
    # DV=0: the DID is ignored, whatever its width.
    ("inval_ddt_all_wide_did", iodir(did=0xFFFFFF), LVL1,
     [("ddtc", {"all": 1, "device_id": 0xFFFFFF})], []),
    ("inval_ddt_2lvl", iodir(dv=1, did=0xFFFF), LVL2,
     [("ddtc", {"all": 0, "device_id": 0xFFFF})], []),
    ("inval_ddt_3lvl", iodir(dv=1, did=0xFFFFFF), LVL3,
     [("ddtc", {"all": 0, "device_id": 0xFFFFFF})], []),
    ("fence", iofence(), LVL1, [], []),
    ("fence_pr_pw", iofence(pr=1, pw=1), LVL1, [], []),
    # AV: 4 bytes of DATA at ADDR; bit 2 of the address picks the half of the doubleword.
    ("fence_av_low", iofence(av=1, data=0xDEADBEEF, addr=0x8000_1000), LVL1, [],
     [(0x8000_1000, 0xDEADBEEF_DEADBEEF, 0x0F)]),
    ("fence_av_high", iofence(av=1, data=0x1234_5678, addr=0x8000_1004), LVL1, [],
     [(0x8000_1004, 0x12345678_12345678, 0xF0)]),
    ("fence_wsi", iofence(wsi=1), LVL1, ["fence_w_ip"], []),
    ("fence_av_wsi", iofence(av=1, wsi=1, data=7, addr=0x10), LVL1, ["fence_w_ip"],
     [(0x10, 7 << 32 | 7, 0x0F)]),
]

ILLEGAL = [
    ("opcode_0", (0, 0)),
    ("opcode_5", (5, 0)),
    ("opcode_63", (63, 0)),
    ("custom_opcode_64", (64, 0)),
    ("ats_inval", (4, 0)),                                  # capabilities.ATS = 0
    ("ats_prgr", (4 | 1 << 7, 0)),
    ("iotinval_func3_2", iotinval(2)),
    ("iotinval_func3_7", iotinval(7)),
    ("gvma_pscv", iotinval(1, pscv=1)),
    ("iotinval_rsvd_11", iotinval(extra0=1 << 11)),
    ("iotinval_nl_34", iotinval(av=1, extra0=1 << 34)),      # NL: capabilities.NL = 0
    ("iotinval_rsvd_43", iotinval(extra0=1 << 43)),
    ("iotinval_rsvd_60", iotinval(extra0=1 << 60)),
    ("iotinval_s_dw1_9", iotinval(av=1, extra1=1 << 9)),    # S: capabilities.S = 0
    ("iotinval_rsvd_dw1_0", iotinval(extra1=1)),
    ("iotinval_rsvd_dw1_63", iotinval(extra1=1 << 63)),
    ("iofence_func3_1", iofence(func3=1)),
    ("iofence_rsvd_14", iofence(extra0=1 << 14)),
    ("iofence_rsvd_31", iofence(extra0=1 << 31)),
    ("iofence_rsvd_dw1_62", iofence(extra1=1 << 62)),
    ("inval_pdt", iodir(1, dv=1, did=1, pid=1)),            # no process directory
    ("iodir_func3_2", iodir(2)),
    ("inval_ddt_pid", iodir(pid=1)),                        # PID is reserved for INVAL_DDT
    ("iodir_rsvd_10", iodir(extra0=1 << 10)),
    ("iodir_rsvd_32", iodir(extra0=1 << 32)),
    ("iodir_rsvd_39", iodir(extra0=1 << 39)),
    ("iodir_rsvd_dw1", iodir(extra1=1 << 17)),
    ("inval_ddt_did_too_wide_1lvl", iodir(dv=1, did=0x80)),
]


@pytest.mark.parametrize("name, command, mode, events, stores", ONE_COMMAND,
                         ids=[c[0] for c in ONE_COMMAND])
def test_one_command(name, command, mode, events, stores):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.fetches == [cmd_addr(0), cmd_addr(0) + 8]
        assert h.events == events
        assert h.stores == stores
        assert h.head == 1
    Harness({0: command}, mode=mode).run(body)


@pytest.mark.parametrize("name, command", ILLEGAL, ids=[c[0] for c in ILLEGAL])
def test_illegal_command(name, command):
    # The command before it runs; the illegal one stops the queue with cqh at it, and
    # nothing after it is fetched.
    async def body(ctx, h):
        h.submit(3)
        await h.settle(ctx)
        assert h.events == [("ddtc", {"all": 1, "device_id": 0}), ("cmd_ill", 1)]
        assert h.head == 1
        assert h.fetches == [cmd_addr(0), cmd_addr(0) + 8, cmd_addr(1), cmd_addr(1) + 8]
        assert h.stores == []
    Harness({0: iodir(), 1: command, 2: iofence(wsi=1)}).run(body)


@pytest.mark.parametrize("mode, did, legal", [
    (LVL1, 0x7F, True), (LVL1, 0x80, False),
    (LVL2, 0xFFFF, True), (LVL2, 0x1_0000, False),
    (LVL3, 0xFFFFFF, True),
    # Off and Bare have no directory to index: no DID is too wide for them.
    (OFF, 0xFFFFFF, True), (BARE, 0xFFFFFF, True),
])
def test_inval_ddt_did_width(mode, did, legal):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        if legal:
            assert h.events == [("ddtc", {"all": 0, "device_id": did})]
            assert h.head == 1
        else:
            assert h.events == [("cmd_ill", 0)]
            assert h.head == 0
    Harness({0: iodir(dv=1, did=did)}, mode=mode).run(body)


@pytest.mark.parametrize("mode, did, legal", [
    # Extended-format (64-byte) device contexts: 1LVL 6 bits, 2LVL 15 (reference N.3.2).
    (LVL1, 0x3F, True), (LVL1, 0x40, False),
    (LVL2, 0x7FFF, True), (LVL2, 0x8000, False),
    (LVL3, 0xFFFFFF, True),
])
def test_inval_ddt_did_width_extended(mode, did, legal):
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        if legal:
            assert h.events == [("ddtc", {"all": 0, "device_id": did})]
        else:
            assert h.events == [("cmd_ill", 0)]
    Harness({0: iodir(dv=1, did=did)}, mode=mode, config=Config.msi()).run(body)


@pytest.mark.parametrize("igs, fctl_wsi, legal", [
    # IOFENCE.C.WSI=1 is reserved (cmd_ill) while fctl.WSI=0 (reference N.5): with IGS=MSI
    # fctl.WSI is always 0, with IGS=BOTH it is what software chose.
    (Igs.MSI, 0, False), (Igs.BOTH, 0, False), (Igs.BOTH, 1, True), (Igs.WSI, 1, True),
])
def test_iofence_wsi_needs_fctl_wsi(igs, fctl_wsi, legal):
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        if legal:
            assert h.events == ["fence_w_ip", ("ddtc", {"all": 1, "device_id": 0})]
        else:
            assert h.events == [("cmd_ill", 0)]
            assert h.head == 0
    Harness({0: iofence(wsi=1), 1: iodir()}, config=Config(igs=igs),
            fctl_wsi=fctl_wsi).run(body)


def test_iofence_without_wsi_is_legal_under_msis():
    async def body(ctx, h):
        h.submit(1)
        await h.settle(ctx)
        assert h.events == [] and h.head == 1
    Harness({0: iofence(wsi=0)}, config=Config(igs=Igs.MSI), fctl_wsi=0).run(body)


def test_wraparound():
    # An 8-entry ring with cqh=6 and three commands: indexes 6, 7 and 0.
    async def body(ctx, h):
        h.submit(3)
        await h.settle(ctx, 60)
        assert h.fetches == [a for i in (6, 7, 0) for a in (cmd_addr(i), cmd_addr(i) + 8)]
        assert [e[1]["pscid"] for e in h.events] == [6, 7, 0]
        assert h.head == 1
    commands = {i: iotinval(pscv=1, pscid=i) for i in (6, 7, 0)}
    Harness(commands, head=6).run(body)


def test_fetch_fault_stops_at_the_command():
    # The second doubleword of command 1 answers with an error: cqmf, cqh stays at 1.
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.events == [("iotlb", vma()), ("cqmf", 1)]
        assert h.head == 1
        # Software clears cqmf (the fault is gone): the command is fetched again.
        h.fetch_errors.clear()
        h.run_bit = 1
        await h.settle(ctx)
        assert h.events[2:] == [("iotlb", vma(pscv=1, pscid=1))]
        assert h.head == 2
        assert h.fetches[-4:] == [cmd_addr(1), cmd_addr(1) + 8, cmd_addr(1), cmd_addr(1) + 8]
    Harness({0: iotinval(), 1: iotinval(pscv=1, pscid=1)},
            fetch_errors={cmd_addr(1) + 8}).run(body)


@pytest.mark.parametrize("addr, stores", [
    (0x6000, [(0x6000, 5 << 32 | 5, 0x0F)]),          # the store is answered SLVERR
    (1 << 56, []),                                      # at 2**PAS: no bus access at all
])
def test_fence_store_fault(addr, stores):
    # The store faults: cqmf, cqh stays at the fence and WSI is not signalled.
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.events == [("cqmf", 0)]
        assert h.stores == stores
        assert h.head == 0
    Harness({0: iofence(av=1, wsi=1, data=5, addr=addr), 1: iodir()},
            store_errors={0x6000}).run(body)


def test_resume_after_cmd_ill():
    # Software replaces the bad command with a fence and clears cmd_ill: processing
    # resumes at cqh, with the replacement.
    async def body(ctx, h):
        h.submit(2)
        await h.settle(ctx)
        assert h.events == [("cmd_ill", 0)]
        h.mem[cmd_addr(0)], h.mem[cmd_addr(0) + 8] = iofence(wsi=1)
        h.run_bit = 1
        await h.settle(ctx)
        assert h.events[1:] == ["fence_w_ip", ("ddtc", {"all": 1, "device_id": 0})]
        assert h.head == 2
    Harness({0: (5, 0), 1: iodir()}).run(body)


def test_stopped_queue_fetches_nothing():
    # run=0 (queue off, or an error bit set): commands wait.
    async def body(ctx, h):
        h.run_bit = 0
        h.submit(1)
        await h.settle(ctx)
        assert h.fetches == [] and h.head == 0
        h.run_bit = 1
        await h.settle(ctx)
        assert h.head == 1
    Harness({0: iofence()}).run(body)


def test_constructor_checks():
    with pytest.raises(TypeError, match=r"^config must be a Config, not 'x'$"):
        CommandQueue("x")
