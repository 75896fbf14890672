"""The evaluation harness: drives the `Peek` facade on scratch stores (`peek eval`, benchmarks).

It sits above the facade (it opens `Peek` itself), so it lives outside `peek.agent`, which the
facade imports.
"""
