"""cocotb coroutines for tests/cosim/test_sim.py: a registered adder."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer


@cocotb.test()
async def adds_at_time_zero_and_registers(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.a.value = 3
    dut.b.value = 4
    await Timer(1, unit="ns")
    # Combinational output valid before any clock edge: the Icarus -g2012 always_comb case.
    assert int(dut.y.value) == 7
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    assert int(dut.q.value) == 7
