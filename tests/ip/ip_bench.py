"""A cocotb bench of the generated Verilog IP (``iogate_<config>.v``, module iogate_iommu).

It knows only the files an integrator gets: the Verilog and its ``.ports.json`` (path in
``IP_PORTS_JSON``). It must not import iogate or Amaranth (tests/ip/test_ip.py checks
that none is loaded), so that it shows the file simulates on its own.

Expected values come from the spec (RISC-V IOMMU spec v1.0) and the JSON's
``capabilities``, which ``iogate generate`` took from ``Config.capabilities``:

* "IOMMU capabilities (capabilities)": the register at offset 0 reads that value.
* "Device-directory-table pointer (ddtp)" (offset 0x10): ``iommu_mode`` Off (0) makes every
  request fault with CAUSE 256 ("All inbound transactions disallowed", spec "Fault/Event-
  Queue (FQ)"); Bare (1) passes the IOVA through as the physical address, so the answer's
  4 KiB page is ``iova >> 12``. ``ddtp.busy`` (bit 4) is polled after each write.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

CAPABILITIES = 0x00
DDTP = 0x10
DDTP_BUSY = 1 << 4
MODE_OFF, MODE_BARE = 0, 1
CAUSE_ALL_INBOUND_DISALLOWED = 256


def _ports():
    with open(os.environ["IP_PORTS_JSON"]) as f:
        return json.load(f)


async def _setup(dut):
    desc = _ports()
    inputs = [p["name"] for p in desc["ports"] if p["direction"] == "input"]
    # Every input idles at 0: the memory bus never answers (Off and Bare make no memory
    # access), the requester sends nothing until told.
    for name in inputs:
        if name != "clk":
            getattr(dut, name).value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    mmio = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "mmio"), dut.clk, dut.rst)
    return desc, mmio


async def _set_mode(dut, mmio, mode):
    await mmio.write_qword(DDTP, mode)
    for _ in range(100):
        ddtp = await mmio.read_qword(DDTP)
        if not ddtp & DDTP_BUSY:
            break
    assert ddtp & 0xF == mode, f"ddtp.iommu_mode reads {ddtp & 0xF}, wrote {mode}"


async def _translate(dut, tag, device_id, iova, access=0):
    dut.tr0_req_payload_tag.value = tag
    dut.tr0_req_payload_device_id.value = device_id
    dut.tr0_req_payload_iova.value = iova
    dut.tr0_req_payload_access.value = access
    dut.tr0_req_valid.value = 1
    dut.tr0_resp_ready.value = 1
    while True:
        await RisingEdge(dut.clk)
        if dut.tr0_req_ready.value:
            break
    dut.tr0_req_valid.value = 0
    while not dut.tr0_resp_valid.value:
        await RisingEdge(dut.clk)
    resp = {n: int(getattr(dut, f"tr0_resp_payload_{n}").value)
            for n in ("tag", "fault", "cause", "ppn")}
    await RisingEdge(dut.clk)
    dut.tr0_resp_ready.value = 0
    return resp


@cocotb.test()
async def capabilities_and_bare(dut):
    """capabilities over AXI4-Lite; Off faults with CAUSE 256; Bare answers iova >> 12."""
    desc, mmio = await _setup(dut)
    caps = await with_timeout(mmio.read_qword(CAPABILITIES), 10, "us")
    dut._log.info(f"capabilities {caps:#018x}, ports JSON {desc['capabilities']:#018x}")
    assert caps == desc["capabilities"]

    await _set_mode(dut, mmio, MODE_OFF)
    resp = await with_timeout(_translate(dut, 5, 0x12, 0x1234_5678_9ABC), 10, "us")
    assert resp["tag"] == 5 and resp["fault"] == 1, resp
    assert resp["cause"] == CAUSE_ALL_INBOUND_DISALLOWED, resp

    await _set_mode(dut, mmio, MODE_BARE)
    iova = 0x00AB_CDEF_1234_5678
    resp = await with_timeout(_translate(dut, 9, 0x34, iova, access=1), 10, "us")
    assert resp["tag"] == 9 and resp["fault"] == 0, resp
    assert resp["ppn"] == iova >> 12, f"{resp['ppn']:#x} != {iova >> 12:#x}"
