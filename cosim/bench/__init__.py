"""Benchmarks of the iogate RTL in clock cycles (:mod:`iogate.cosim.bench.hw`, run by
:mod:`iogate.cosim.bench.run`), next to the model's throughput (:mod:`iogate.cosim.bench.model`)."""
