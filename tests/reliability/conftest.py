"""The reliability suite shares the integration fixtures: a vhost per test, a bus probe."""

from tests.integration.conftest import amqp_url, probe, start_service

__all__ = ["amqp_url", "probe", "start_service"]
