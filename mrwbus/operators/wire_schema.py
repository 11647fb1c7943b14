"""The JSON Schema of every wire message, generated from the pydantic models in `mrwbus.messages`.

For relay and agent authors who do not write Python: `mrwbus schema --out DIR` writes one file per
message (`docs/schema/` holds the copy of this version, checked by the tests to be up to date).
The schemas describe what a consumer accepts (pydantic's validation mode); a few limits the models
check in code are not expressible here, e.g. the 1023-byte limit of `device` counts UTF-8 bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mrwbus.operators.wire_docs import MESSAGES

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_of(name: str) -> dict[str, Any]:
    """The schema of one documented message, e.g. `FaultNotification`."""
    models = {model.__name__: model for model in MESSAGES}
    schema: dict[str, Any] = {"$schema": DIALECT}
    schema.update(models[name].model_json_schema(mode="validation"))
    return schema


def message_names() -> list[str]:
    return [model.__name__ for model in MESSAGES]


def render(name: str) -> str:
    """The file text of one schema: stable key order, so the committed copy diffs cleanly."""
    return json.dumps(schema_of(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write `<Message>.json` for every message into `directory`; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in message_names():
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written
