"""The pure core: values in, decisions out. Nothing here imports aio-pika or does I/O."""
