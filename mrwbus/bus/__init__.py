"""The transport: topology, confirmed publishing, consuming and dead-lettering on RabbitMQ."""
