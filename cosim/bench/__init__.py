"""Benchmarks of the iogate RTL in clock cycles (:mod:`cosim.bench.hw`, run by
:mod:`cosim.bench.run`), next to the model's throughput (:mod:`cosim.model.bench`)."""
