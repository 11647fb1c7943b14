"""The broker administrator's verb: `provision` (roles, users, password files, topology)."""

from __future__ import annotations

import argparse

from mrwbus.cli.common import add_verb, broker_url, run
from mrwbus.relay.registry import load_config


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    provision = add_verb(verbs, "provision", provision_broker)
    provision.add_argument(
        "--config", required=True, metavar="PATH", help="the cluster configuration (YAML)"
    )
    provision.add_argument(
        "--management-url",
        required=True,
        metavar="URL",
        help="the management API, as an administrator, e.g. https://admin@broker:15671/ "
        "(its password: --password-file)",
    )
    provision.add_argument(
        "--vhost", default="/", metavar="NAME", help="the vhost to create and use (default: /)"
    )
    provision.add_argument(
        "--secrets",
        required=True,
        metavar="DIR",
        help="where each user's password file goes (DIR/<user>, mode 0600)",
    )
    provision.add_argument(
        "--rotate", metavar="USER", help="replace this user's password only, and nothing else"
    )


def provision_broker(args: argparse.Namespace) -> int:
    """create the vhost, the topology and one broker user per role (idempotent; docs/security.md)

    Examples:
        # passwords go to DIR/<user> (mode 0600), never printed; --password-file is the
        # administrator's, for the management API; the topology is declared as mrwbus-service
        mrwbus provision --config cluster.yaml --management-url http://admin@localhost:15672/ \\
            --password-file /root/rabbit-admin --secrets /etc/mrwbus/secrets
        mrwbus provision --config cluster.yaml --management-url https://admin@broker:15671/ \\
            --amqp-url amqps://broker/ --tls-ca ca.pem --password-file admin.pw \\
            --vhost mrwbus --secrets /etc/mrwbus/secrets
        mrwbus provision --config cluster.yaml --management-url http://admin@localhost:15672/ \\
            --password-file admin.pw --secrets /etc/mrwbus/secrets --rotate agent-server1
    """
    from mrwbus.operators.provision import provision

    config = load_config(args.config)
    done = run(
        provision(
            config.servers,
            management_url=args.management_url,
            amqp_url=broker_url(args),
            vhost=args.vhost,
            secrets_dir=args.secrets,
            rotate=args.rotate,
            dead_limits=config.service.dead_letter_limits(),
            history_max_age=config.service.history_max_age,
        )
    )
    print(done.summary(args.secrets))
    return 0
