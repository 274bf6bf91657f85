"""Fixtures for tests that call the task functions against the real local services."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from include.retrainer.config import load_spec
from include.retrainer.storage import ObjectStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(s3) -> ObjectStore:
    return ObjectStore(s3)


@pytest.fixture
def churn_spec_factory(tmp_path):
    """A copy of the demo churn spec under a unique model name (isolated registry entries)."""

    def make(**overrides):
        raw = yaml.safe_load((ROOT / "include/models/churn.yaml").read_text())
        name = overrides.pop("name", f"t_{uuid.uuid4().hex[:10]}")
        raw.update(name=name)
        raw["validation"]["suite"] = str(ROOT / "include/suites/churn.json")
        for dotted, value in overrides.items():
            node = raw
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_spec(path)

    return make
