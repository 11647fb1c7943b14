"""The driver relay for plain Linux (`mrwbus relay`), and the one-shot publish of `mrwbus notify`.

One concept per module:
  config.py    the `relay:` section of the cluster YAML, validated by `check-config`
  debounce.py  pure: a level (link up/down) counts only once it held for the debounce time
  patterns.py  pure: kernel-log lines matched against configured regular expressions
  sources.py   what a source reports (`Observation`) and how the configured sources are built
  nic.py, fc.py, logfile.py, program.py   the sources: netlink, sysfs, followed logs, exec
  spool.py     the fsync'd file of faults the broker has not confirmed yet
  delivery.py  the broker-facing part: connect, publish with confirms, in spool order
  daemon.py    wires the sources, the debouncer, the spool and the delivery together
  http.py      `/healthz` and `/metrics` of a running relay
  command.py   the `mrwbus relay` verb
  notify.py    `make_fault` and `publish_fault`: one fault, published once (`mrwbus notify`)
"""

from mrwbus.relay.notify import make_fault, publish_fault

__all__ = ["make_fault", "publish_fault"]
