"""The driver relay for plain Linux (`mrwbus relay`), and the one-shot publish of `mrwbus notify`.

One concept per module:
  sources.py   what a source reports (`Observation`) and what a kind of source declares
  nic.py, fc.py, logfile.py, program.py   the sources (netlink, sysfs, followed logs, exec),
               each with its configuration model and its `KIND`
  registry.py  the kinds (one line each), per-server settings, the check of the sources' keys
  debounce.py  pure: a level (link up/down) counts only once it held for the debounce time
  patterns.py  pure: kernel-log lines matched against configured regular expressions
  spool.py     the fsync'd file of faults the broker has not confirmed yet
  delivery.py  the broker-facing part: a body of the shared session runner, confirmed, in order
  supervise.py every long-running task supervised: logged, counted, shown, started again
  daemon.py    wires the sources, the debouncer, the spool and the delivery together
  relay_http.py  `/healthz` and `/metrics` of a running relay
  command.py   the `mrwbus relay` verb
  notify.py    `make_fault` and `publish_fault`: one fault, published once (`mrwbus notify`)
"""

from mrwbus.relay.notify import make_fault, publish_fault

__all__ = ["make_fault", "publish_fault"]
