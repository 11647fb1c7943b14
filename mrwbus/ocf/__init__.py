"""Group resources run by OCF resource agents, as Pacemaker runs them.

- `contract`: the OCF contract as values (agent names, environment, exit codes); pure.
- `metadata`: an agent's `meta-data` XML read, and parameters checked against it; pure.
- `config`: the `resources:` section of the cluster configuration.
- `agents`: finding agents under `OCF_ROOT`, reading their meta-data, running an action.

The node agent's handlers and probes built on them are in `mrwbus.agent.ocf`. mrwbus still
decides every recovery (restart, failover, final action); an OCF agent only carries out the
start, stop and monitor it is asked for.
"""
