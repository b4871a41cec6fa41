"""Independent reference models of the circuits nmc compiles (golden models).

Written from the documented equations only (docs/backprop.md), in plain numpy, they import
nothing else from ``nmc``, and nothing in the compiler or the interpreters imports them: the
tests check the chip's runs against them, and the benchmarks use them to study settings quickly
(bench/backprop_study.py). They live in the package, not in ``tests/``, so that both can import
them without reaching into each other's folders.
"""
