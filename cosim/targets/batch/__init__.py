"""Batch-mode cosimulation: a trace player and a response recorder around the RTL.

In the interactive test bench every request and response is a Python coroutine step; here
the requests are loaded into a memory beside the IOMMU, streamed into translation port 0
at full rate by hardware, and the responses collected by hardware, so a long run costs the
simulator's own speed plus one Python trigger per batch (``docs/design.md``, "Performance intent").

* :mod:`.harness` -- the Amaranth harness (IOMMU, on-chip memory, player, recorder);
* :mod:`.trace` -- the setup and request trace, recorded from the driver against the model;
* :mod:`.check` -- responses decoded and checked against the architectural model;
* :mod:`.cocotb_batch` -- the cocotb side: replay the setup, load, run, read back;
* :mod:`.plain` -- the same harness under a plain Verilator C++ main (``plain_main.cpp``);
* :mod:`.speed` -- verified translations per second of every mode, in one run.
"""
