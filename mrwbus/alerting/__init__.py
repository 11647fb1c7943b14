"""Events that need a person, pushed to Alertmanager (docs/alerting.md).

`catalogue` (pure) says which event fires or resolves which alert; `client` posts alerts to
Alertmanager's v2 API with retries; `forwarder` consumes the durable queue `mrwbus.alerting`
(bound to `mrwbus.events`) and acknowledges a batch only once Alertmanager accepted its
alerts, so nothing is lost when the service or Alertmanager restarts.
"""
