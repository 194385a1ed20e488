"""Scenarios: seeded workloads run on the RTL (as cocotb tests) and checked against the model."""
