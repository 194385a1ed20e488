"""Targets: each a :class:`iogate.firmware.bus.Bus` onto an iogate (and a way to send it
translation requests).

Layer: above :mod:`iogate.cosim.model` and :mod:`iogate.cosim.check` (a target may mirror
itself into the model); below the scenarios, which run on any target.

========================  =============================================================
:mod:`.sim`               toolchain glue: Amaranth to Verilog, Verilator and Icarus
                          builds, the cocotb runner
:mod:`.tb`                the cocotb test bench: AXI agents, translation-port agents,
                          memory, interrupts, the mirrored ``Bus``
:mod:`.batch`             batch mode: trace player and recorder gateware, the plain
                          Verilator C++ harness
:mod:`.board`             :class:`BoardLink`, a ``Bus`` over a board's serial port
========================  =============================================================
"""
