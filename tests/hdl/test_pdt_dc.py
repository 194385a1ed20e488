"""iogate.hdl.ddt.dc_misconfigured with process contexts: the PDTV=1 device-context checks.

Expected values come from spec "Device-context configuration checks" (reference N.1.1): with
PDTV=1, ``DC.fsc`` is ``pdtp``; a reserved ``pdtp.MODE`` (4-13, custom 14-15), a PD8/PD17/PD20
whose capability is 0, or ``pdtp`` bits 59:44 set is cause 259; the ``iosatp`` checks are not
applied to ``fsc``; DPE=1 with PDTV=0 stays 259. DC bits as in tests/hdl/test_ddt.py: tc V=0,
PDTV=5, DPE=9; fsc MODE 63:60.
"""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from iogate.hdl import Config
from iogate.hdl.ddt import dc_misconfigured
from iogate.hdl.formats import DC, IohgatpMode, IosatpMode, PdtpMode

TC_V, PDTV, DPE = 1 << 0, 1 << 5, 1 << 9


def mode(m):
    return m << 60


def misconfigured(words, pdtp_modes, iosatp_modes=(IosatpMode.SV39,)):
    """``dc_misconfigured`` of the DC ``words`` ([tc, iohgatp, ta, fsc]), simulated."""
    m = Module()
    dc = Signal(DC)
    out = Signal()
    m.d.comb += out.eq(dc_misconfigured(dc, iosatp_modes=iosatp_modes,
                                        iohgatp_modes=(IohgatpMode.BARE,),
                                        pdtp_modes=pdtp_modes))
    answer = []

    async def testbench(ctx):
        ctx.set(dc.as_value(), sum(w << 64 * k for k, w in enumerate(words)))
        answer.append(bool(ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    return answer[0]


def offered(pd_levels):
    return Config.full().replace(pd_levels=pd_levels).pdtp_modes


# (name, [tc, iohgatp, ta, fsc], pd_levels, misconfigured)
CHECKS = [
    # Without process contexts PDTV=1 is legal only with pdtp Bare (check 8).
    ("none_bare", [TC_V | PDTV, 0, 0, 0], 0, False),
    ("none_pd8", [TC_V | PDTV, 0, 0, mode(1) | 0x100], 0, True),
    # Each mode is legal exactly when its capability is set.
    ("pd8_pd8", [TC_V | PDTV, 0, 0, mode(1) | 0x100], 1, False),
    ("pd8_pd17", [TC_V | PDTV, 0, 0, mode(2) | 0x100], 1, True),
    ("pd8_pd20", [TC_V | PDTV, 0, 0, mode(3) | 0x100], 1, True),
    ("pd17_pd17", [TC_V | PDTV, 0, 0, mode(2) | 0x100], 2, False),
    ("pd17_pd20", [TC_V | PDTV, 0, 0, mode(3) | 0x100], 2, True),
    ("pd20_pd8", [TC_V | PDTV, 0, 0, mode(1)], 3, False),
    ("pd20_pd17", [TC_V | PDTV, 0, 0, mode(2)], 3, False),
    ("pd20_pd20", [TC_V | PDTV, 0, 0, mode(3) | (1 << 44) - 1], 3, False),
    ("pd20_bare", [TC_V | PDTV, 0, 0, 0], 3, False),
    # Reserved and custom encodings.
    ("pd20_mode_4", [TC_V | PDTV, 0, 0, mode(4)], 3, True),
    ("pd20_mode_8", [TC_V | PDTV, 0, 0, mode(8)], 3, True),   # Sv39's code is not a PDT mode
    ("pd20_mode_13", [TC_V | PDTV, 0, 0, mode(13)], 3, True),
    ("pd20_mode_14", [TC_V | PDTV, 0, 0, mode(14)], 3, True),
    ("pd20_mode_15", [TC_V | PDTV, 0, 0, mode(15)], 3, True),
    # pdtp bits 59:44 are reserved.
    ("pd20_bit_44", [TC_V | PDTV, 0, 0, mode(1) | 1 << 44], 3, True),
    ("pd20_bit_59", [TC_V | PDTV, 0, 0, mode(3) | 1 << 59], 3, True),
    # DPE is legal with PDTV=1, whatever the pdtp mode; without PDTV it is 259 (check 12).
    ("pd20_dpe", [TC_V | PDTV | DPE, 0, 0, mode(2)], 3, False),
    ("pd20_dpe_without_pdtv", [TC_V | DPE, 0, 0, mode(8)], 3, True),
    # The iosatp checks do not apply to fsc with PDTV=1 and do without it.
    ("pd20_iosatp_sv39", [TC_V, 0, 0, mode(8)], 3, False),
    ("pd20_iosatp_pd8_code", [TC_V, 0, 0, mode(1)], 3, True),
]


@pytest.mark.parametrize("name, words, pd_levels, bad", CHECKS, ids=[c[0] for c in CHECKS])
def test_pdtv_checks(name, words, pd_levels, bad):
    assert misconfigured(words, offered(pd_levels)) == bad


def test_offered_modes_follow_pd_levels():
    # The capability bits are cumulative (Config's choice): PD8, +PD17, +PD20.
    assert offered(0) == ()
    assert offered(1) == (PdtpMode.PD8,)
    assert offered(3) == (PdtpMode.PD8, PdtpMode.PD17, PdtpMode.PD20)


# A walker that cannot translate guest physical PDT addresses (pdt_gpa=False) refuses PDTV=1
# with pdtp and iohgatp both not Bare; the pipeline's walker can whenever a second stage is
# built.
SV39X4 = 8 << 60 | 0x4_0000


@pytest.mark.parametrize("words, pdt_gpa, bad", [
    ([TC_V | PDTV, SV39X4, 0, mode(1)], False, True),
    ([TC_V | PDTV, SV39X4, 0, mode(1)], True, False),
    ([TC_V | PDTV, SV39X4, 0, 0], False, False),   # pdtp Bare: no PDT to read
    ([TC_V | PDTV, 0, 0, mode(3)], False, False),  # iohgatp Bare: host addresses
])
def test_pdt_in_guest_memory(words, pdt_gpa, bad):
    m = Module()
    dc = Signal(DC)
    out = Signal()
    m.d.comb += out.eq(dc_misconfigured(
        dc, iosatp_modes=(IosatpMode.SV39,),
        iohgatp_modes=(IohgatpMode.BARE, IohgatpMode.SV39X4),
        pdtp_modes=offered(3), pdt_gpa=pdt_gpa))
    answer = []

    async def testbench(ctx):
        ctx.set(dc.as_value(), sum(w << 64 * k for k, w in enumerate(words)))
        answer.append(bool(ctx.get(out)))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert answer[0] == bad
