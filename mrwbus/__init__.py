"""mrwbus: a fault-to-recovery bus for high-availability clusters, on RabbitMQ."""

from importlib.metadata import PackageNotFoundError, version

try:
    # Written once, in pyproject.toml; the installed distribution's metadata carries it.
    __version__ = version("mrwbus")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
