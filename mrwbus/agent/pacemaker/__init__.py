"""The Pacemaker backend (`agent.backend: pacemaker`, docs/pacemaker.md): Pacemaker carries out
the agent's commands, and crm_mon says where groups run."""
