"""`python -m peek.cli`: the same entry point as the `peek` script."""

from peek.cli.app import run

run()
