"""`alerting:` in the cluster configuration: where events that need a person are pushed."""

from __future__ import annotations

import re

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class AlertingConfig(BaseModel):
    """Off unless `alertmanager_url` is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alertmanager_url: AnyHttpUrl | None = None
    """Alertmanager's base URL, e.g. http://alertmanager:9093; alerts go to its
    `/api/v2/alerts`. None: nothing is pushed (the Prometheus rules still work)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Added to every pushed alert, e.g. `{cluster: prod-east}` for routing."""
    hold_seconds: float = Field(default=4 * 86400.0, gt=0)
    """How long a pushed alert stays firing when no resolve comes (its `endsAt`)."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """One post's time limit; a post that takes longer is retried."""
    max_backoff_seconds: float = Field(default=60.0, gt=0)
    """The longest wait between retries of a failed post (waits double from 0.5 s)."""
    generator_url: AnyHttpUrl | None = None
    """The link an alert carries back to mrwbus, e.g. the status page."""
    runbook_base: str = Field(default="docs/alerting.md", min_length=1)
    """Where docs/alerting.md is served; each alert's `runbook_url` is this + `#<alertname>`."""

    @property
    def enabled(self) -> bool:
        return self.alertmanager_url is not None

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a label name (letters, digits and _)")
        return labels
