"""cocotb test-bench components around the iogate RTL.

The shape follows cocotb's matrix_multiplier example: agents that drive and monitor the
RTL's ports (cocotbext-axi for MMIO and memory, stream agents for the translation ports),
a scoreboard that checks against the architectural model, and a ``Testbench`` that owns
clock, reset and every component.
"""
