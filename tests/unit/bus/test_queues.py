"""The pure parts of reading the queues: stalled agent queues, the management API's figures."""

import base64
from datetime import UTC, datetime

from mrwbus.bus.queues import management_endpoint, mark_stalled, merge_management, watched_queues
from mrwbus.messages.bus import QueueDepth

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def agent(ready: int, consumers: int) -> QueueDepth:
    return QueueDepth(
        queue="mrwbus.agent.s1", role="agent", server="s1", ready=ready, consumers=consumers
    )


def test_every_queue_an_operator_watches() -> None:
    names = [name for name, _, _ in watched_queues(["s1", "s2"])]
    assert names == [
        "mrwbus.faults",
        "mrwbus.agent.s1",
        "mrwbus.agent.s2",
        "mrwbus.service.results",
        "mrwbus.control",
        "mrwbus.dead",
    ]


def test_an_agent_queue_is_stalled_only_while_it_grows_unconsumed() -> None:
    baseline: dict[str, int] = {}
    assert not mark_stalled([agent(2, 1)], baseline)[0].stalled
    assert not mark_stalled([agent(2, 0)], baseline)[0].stalled  # waiting, not growing
    assert mark_stalled([agent(3, 0)], baseline)[0].stalled
    assert not mark_stalled([agent(3, 1)], baseline)[0].stalled  # the agent is back
    assert not mark_stalled([agent(0, 1)], baseline)[0].stalled
    # Stopped, and commands arrived before the next reading: grown since it last consumed.
    assert mark_stalled([agent(3, 0)], baseline)[0].stalled


def test_an_agent_never_seen_consuming_grows_from_its_lowest_depth() -> None:
    baseline: dict[str, int] = {}
    assert not mark_stalled([agent(0, 0)], baseline)[0].stalled
    assert mark_stalled([agent(1, 0)], baseline)[0].stalled


def test_a_queue_emptied_by_hand_grows_from_its_new_depth() -> None:
    baseline: dict[str, int] = {}
    mark_stalled([agent(5, 0)], baseline)
    assert not mark_stalled([agent(0, 0)], baseline)[0].stalled
    assert mark_stalled([agent(1, 0)], baseline)[0].stalled


def test_the_management_api_adds_unacked_and_ages() -> None:
    depths = [agent(2, 1), agent(0, 1).model_copy(update={"queue": "other"})]
    merged = merge_management(
        depths,
        [
            {
                "name": "mrwbus.agent.s1",
                "messages_unacknowledged": 4,
                "head_message_timestamp": NOW.timestamp() - 30,
            },
            {"name": "other", "messages_unacknowledged": 0, "head_message_timestamp": None},
        ],
        NOW,
    )
    assert (merged[0].unacked, merged[0].oldest_age_seconds) == (4, 30.0)
    assert (merged[1].unacked, merged[1].oldest_age_seconds) == (0, None)


def test_the_management_endpoint_uses_the_vhost_and_the_service_credentials() -> None:
    url, auth = management_endpoint("http://broker:15672", "amqp://svc:pw@broker/mrwbus")
    assert url == "http://broker:15672/api/queues/mrwbus"
    assert auth == {"Authorization": "Basic " + base64.b64encode(b"svc:pw").decode()}
    url, auth = management_endpoint("https://mon:x@broker/api/", "amqp://svc:pw@broker/")
    assert url == "https://broker/api/queues/%2F"
    assert auth == {"Authorization": "Basic " + base64.b64encode(b"mon:x").decode()}
