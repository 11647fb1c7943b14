"""mrwbus: a fault-to-recovery bus for high-availability clusters, on RabbitMQ."""

__version__ = "0.1.0"
