"""iogate.cosim.targets.sim: SystemVerilog generation and reuse of simulator builds."""

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from iogate.cosim.targets import sim


class Adder(wiring.Component):
    a: In(8)
    b: In(8)
    y: Out(9)
    q: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + self.b)
        m.d.sync += self.q.eq(self.y)
        return m


class DefaultThenOverride(wiring.Component):
    """The comb pattern Icarus 11 loops on when it is emitted as a process."""
    a: In(4)
    c: In(1)
    y: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a)
        with m.If(self.c):
            m.d.comb += self.y[0].eq(1)
        return m


def test_verilog_is_deterministic_sv_without_sources():
    one = sim.verilog_of(Adder(), "adder")
    two = sim.verilog_of(Adder(), "adder")
    assert one == two
    assert "always_ff" in one
    assert "src" not in one and ".py" not in one


def test_combinational_logic_is_not_a_process():
    text = sim.verilog_of(DefaultThenOverride(), "top")
    assert "always_comb" not in text and "always @*" not in text
    assert "assign" in text


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_build_is_reused_until_the_design_changes(simulator, tmp_path):
    first = sim.build(Adder(), "adder", simulator, build_root=tmp_path)
    assert first.rebuilt
    sim.run(first, "sim_smoke_tb")
    again = sim.build(Adder(), "adder", simulator, build_root=tmp_path)
    assert not again.rebuilt
    sim.run(again, "sim_smoke_tb")
    changed = sim.build(sim.verilog_of(Adder(), "top") + "\n// changed\n", "adder", simulator,
                        build_root=tmp_path)
    assert changed.rebuilt


def test_unknown_simulator_is_refused(tmp_path):
    with pytest.raises(ValueError,
                       match=r"sim must be one of \('verilator', 'icarus'\), not 'vcs'"):
        sim.build("module adder; endmodule", "adder", "vcs", build_root=tmp_path)
