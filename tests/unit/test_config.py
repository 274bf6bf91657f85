"""Tests for include/retrainer/config.py: model YAML files -> validated ModelSpec objects.

A broken spec must never surface as a bare pydantic traceback: every failure is a
ModelSpecError whose text names the file, the dotted field and the problem, because that
text is what a user reads in Airflow's "DAG Import Errors" panel.

Scenarios are written into ``tmp_path`` laid out like the repo (``models/<name>.yaml`` next
to ``suites/churn.json``), so the shipped relative suite path ``../suites/churn.json``
resolves exactly as it does in production.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from include.retrainer import config as config_module
from include.retrainer.config import (
    DEFAULT_MODELS_DIR,
    ModelSpec,
    ModelSpecError,
    clear_spec_cache,
    load_all,
    load_spec,
    models_dir,
    parse_spec,
    spec_cache_info,
    spec_files,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN_YAML = REPO_ROOT / "include" / "models" / "churn.yaml"
CHURN_SUITE = REPO_ROOT / "include" / "suites" / "churn.json"


# -- helpers ------------------------------------------------------------------------


def churn_raw() -> dict[str, Any]:
    """The shipped churn spec as a plain dict (a fresh copy each call)."""
    return yaml.safe_load(CHURN_YAML.read_text(encoding="utf-8"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """``<tmp>/models`` (empty) beside ``<tmp>/suites/churn.json``, like include/."""
    (tmp_path / "models").mkdir()
    (tmp_path / "suites").mkdir()
    shutil.copy(CHURN_SUITE, tmp_path / "suites" / "churn.json")
    return tmp_path


def write_spec(folder: Path, raw: Any, name: str = "churn") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def minimal_raw(name: str = "mini") -> dict[str, Any]:
    """The smallest valid spec: everything else comes from defaults."""
    return {
        "name": name,
        "data": {"bucket": "raw-data", "prefix": "mini"},
        "features": {"target": "y", "numeric": ["x1"]},
    }


def assert_spec_error(exc: ModelSpecError, path: Path, field: str | None, problem: str) -> None:
    """The message is '<file>: field '<dotted.field>': <problem>' and the attributes agree."""
    text = str(exc)
    assert exc.path == str(path)
    assert text.startswith(f"{path}: "), text
    assert exc.field == field, text
    if field is None:
        assert "field '" not in text, text
    else:
        assert f"field '{field}': " in text, text
        assert "<root>" not in text, text
    assert re.search(problem, exc.problem, flags=re.IGNORECASE), f"{problem!r} not in {exc.problem!r}"
    # No pydantic boilerplate ('Value error, ...', docs URLs) leaks into what users read.
    assert "Value error" not in text and "errors.pydantic.dev" not in text, text


# -- the shipped spec ---------------------------------------------------------------


def test_shipped_churn_spec_parses_into_typed_fields() -> None:
    spec = load_spec(CHURN_YAML)

    assert spec.name == "churn"
    assert spec.dag_id == "retrain_churn"
    assert spec.source_path == str(CHURN_YAML)
    assert spec.owner == "ml-platform"
    assert spec.tags == ["churn", "demo"]
    assert spec.schedule == "@weekly"
    assert spec.start_date == dt.date(2026, 1, 4)
    assert spec.catchup is False
    assert spec.retries == 2
    assert spec.data.bucket == "raw-data" and spec.data.prefix == "churn"
    assert spec.artifacts_conn_id == "s3_data"  # artifacts.conn_id unset -> data.conn_id
    assert spec.features.target == "churned"
    assert spec.features.timestamp == "event_ts"
    assert spec.features.feature_columns == [
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "usage_hours",
        "contract",
        "payment_method",
        "region",
    ]
    # Relative suite path resolves against the YAML's folder, not the working directory.
    assert spec.suite_path is not None
    assert spec.suite_path.resolve() == CHURN_SUITE.resolve()
    assert spec.drift.gate.min_importance_share == 0.2
    assert spec.drift.gate.critical_features == ["monthly_charges"]
    assert spec.drift.gate.max_champion_age_weeks == 4
    assert spec.training.estimator == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert spec.training.params == {"max_iter": 150, "learning_rate": 0.1, "random_state": 0}
    assert spec.comparison.primary_metric == "roc_auc"
    assert spec.comparison.floor == pytest.approx(0.70)
    assert spec.comparison.policy == "expected_gain"
    assert spec.comparison.min_improvement == pytest.approx(0.0)


def test_shipped_models_folder_loads_without_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAIN_MODELS_DIR", raising=False)
    assert models_dir() == DEFAULT_MODELS_DIR
    specs, errors = load_all()
    assert errors == []
    assert "churn" in {s.name for s in specs}


def test_models_dir_env_override(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_spec(workspace / "models", minimal_raw("only_here"), name="only_here")
    monkeypatch.setenv("RETRAIN_MODELS_DIR", str(workspace / "models"))

    assert models_dir() == workspace / "models"
    specs, errors = load_all()
    assert errors == []
    assert [s.name for s in specs] == ["only_here"]  # the shipped churn.yaml is not read


def test_spec_is_immutable() -> None:
    spec = load_spec(CHURN_YAML)
    with pytest.raises(pydantic.ValidationError):
        spec.drift.alpha = 0.5  # type: ignore[misc]


# -- defaults -----------------------------------------------------------------------


def test_minimal_spec_gets_documented_defaults(workspace: Path) -> None:
    spec = load_spec(write_spec(workspace / "models", minimal_raw(), name="mini"))

    assert spec.dag_id == "retrain_mini"
    assert (spec.description, spec.owner, spec.tags) == ("", "ml-platform", [])
    assert spec.schedule == "@weekly"
    assert spec.start_date == dt.date(2026, 1, 4)
    assert (spec.catchup, spec.max_active_runs, spec.retries) == (False, 1, 2)
    assert spec.retry_delay_minutes == 1.0

    assert spec.data.conn_id == "s3_data"
    assert (spec.data.format, spec.data.csv_delimiter, spec.data.missing_data) == ("auto", ",", "fail")
    assert spec.data.max_rows == 5_000_000
    assert (spec.artifacts.conn_id, spec.artifacts.bucket, spec.artifacts.prefix) == (None, "retrain-artifacts", "runs")
    assert spec.artifacts_conn_id == "s3_data"

    assert spec.features.categorical == [] and spec.features.timestamp is None
    assert spec.validation.suite is None and spec.suite_path is None
    assert spec.validation.expectations == [] and spec.validation.schema_checks is True

    assert (spec.drift.numeric_method, spec.drift.categorical_method) == ("ks", "chi2")
    assert (spec.drift.alpha, spec.drift.correction) == (0.05, "holm")
    assert (spec.drift.min_rows, spec.drift.max_rows) == (30, 50_000)
    assert spec.drift.gate.rule == "any"
    assert (spec.drift.gate.data_drift, spec.drift.gate.prediction_drift, spec.drift.gate.performance_decay) == (
        True,
        True,
        True,
    )
    assert spec.drift.gate.min_importance_share == 0.2
    assert spec.drift.gate.max_champion_age_weeks == 4
    assert spec.drift.gate.retrain_cost is None
    assert spec.drift.gate.critical_features == []
    assert spec.training.max_window_weeks is None

    assert spec.training.estimator == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert spec.training.params == {}
    assert (spec.training.window_weeks, spec.training.holdout_days) == (4, 2)

    assert spec.comparison.primary_metric == "roc_auc"
    assert spec.comparison.floor is None
    assert (spec.comparison.min_improvement, spec.comparison.alpha) == (0.0, 0.05)
    assert spec.comparison.policy == "expected_gain"
    assert spec.comparison.mcnemar_method == "midp"


@pytest.mark.parametrize(
    "block, key, value, field",
    [
        ("drift", "ks_min_statistic", 0.1, "drift.ks_min_statistic"),
        ("drift", "psi_threshold", 0.2, "drift.psi_threshold"),
        ("comparison", "exact_threshold", 25, "comparison.exact_threshold"),
    ],
)
def test_schema_1_fields_fail_with_what_replaced_them(workspace: Path, block, key, value, field) -> None:
    raw = minimal_raw()
    raw.setdefault(block, {})[key] = value
    with pytest.raises(ModelSpecError) as err:
        load_spec(write_spec(workspace / "models", raw, name="mini"))
    assert err.value.field == field
    assert "removed in model spec schema 2" in err.value.problem


def test_schema_1_gate_share_names_its_replacement(workspace: Path) -> None:
    raw = minimal_raw()
    raw["drift"] = {"gate": {"min_drifted_share": 0.3}}
    with pytest.raises(ModelSpecError, match="min_importance_share") as err:
        load_spec(write_spec(workspace / "models", raw, name="mini"))
    assert err.value.field == "drift.gate.min_drifted_share"


def test_max_window_weeks_must_cover_the_window(workspace: Path) -> None:
    raw = minimal_raw()
    raw["training"] = {"window_weeks": 4, "max_window_weeks": 2}
    with pytest.raises(ModelSpecError) as err:
        load_spec(write_spec(workspace / "models", raw, name="mini"))
    assert err.value.field == "training.max_window_weeks"


def test_defaults_are_not_shared_between_specs(workspace: Path) -> None:
    """default_factory, not a shared mutable default: two specs own separate lists."""
    a = load_spec(write_spec(workspace / "models", minimal_raw("a"), name="a"))
    b = load_spec(write_spec(workspace / "models", minimal_raw("b"), name="b"))
    assert a.tags is not b.tags
    assert a.drift.gate.critical_features is not b.drift.gate.critical_features


def test_explicit_artifacts_conn_and_prefix_normalisation(workspace: Path) -> None:
    raw = minimal_raw()
    raw["data"]["prefix"] = "/exports/mini/"
    raw["artifacts"] = {"conn_id": "s3_artifacts", "prefix": "runs/v2/"}
    spec = load_spec(write_spec(workspace / "models", raw, name="mini"))
    assert spec.data.prefix == "exports/mini"  # slashes trimmed so keys never get '//'
    assert spec.artifacts.prefix == "runs/v2"
    assert spec.artifacts_conn_id == "s3_artifacts"


def test_absolute_suite_path_is_used_as_is(workspace: Path) -> None:
    raw = churn_raw()
    raw["validation"]["suite"] = str(CHURN_SUITE)
    spec = load_spec(write_spec(workspace / "models", raw))
    assert spec.suite_path == CHURN_SUITE


def test_holdout_just_inside_the_window_is_accepted(workspace: Path) -> None:
    raw = churn_raw()
    raw["training"].update(window_weeks=1, holdout_days=6)
    spec = load_spec(write_spec(workspace / "models", raw))
    assert (spec.training.window_weeks, spec.training.holdout_days) == (1, 6)


def test_log_loss_floor_is_a_ceiling_above_one(workspace: Path) -> None:
    raw = churn_raw()
    raw["comparison"].update(primary_metric="log_loss", floor=2.0)
    spec = load_spec(write_spec(workspace / "models", raw))
    assert spec.comparison.floor == 2.0


# -- broken specs -------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(section: str, key: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        target = raw
        for part in section.split("."):
            target = target.setdefault(part, {})
        target[key] = value

    return mutate


def _pop(section: str, key: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw[section].pop(key)

    return mutate


def _append(section: str, key: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw[section][key].append(value)

    return mutate


def _top(key: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        raw[key] = value

    return mutate


BROKEN_CASES: list[Any] = [
    pytest.param(_top("trainign", {"window_weeks": 2}), "trainign", r"unknown field.*spelling", id="typo-top-level"),
    pytest.param(
        _set("drift.gate", "critical_feature", ["x"]), "drift.gate.critical_feature", r"unknown field", id="typo-nested"
    ),
    pytest.param(_pop("data", "bucket"), "data.bucket", r"required field is missing", id="missing-data-bucket"),
    pytest.param(_top("features", None), "features", r"valid dictionary", id="features-null"),
    pytest.param(_set("drift", "alpha", "high"), "drift.alpha", r"valid number", id="wrong-type-alpha"),
    pytest.param(_set("drift", "alpha", 1.5), "drift.alpha", r"less than 1", id="alpha-above-1"),
    pytest.param(_set("drift", "alpha", 0), "drift.alpha", r"greater than 0", id="alpha-zero"),
    pytest.param(
        _set("drift", "numeric_method", "t-test"),
        "drift.numeric_method",
        r"'ks'.*'psi'.*'wasserstein'",
        id="unknown-drift-method",
    ),
    pytest.param(
        _set("comparison", "floor", 2), "comparison.floor", r"roc_auc must be between 0 and 1", id="floor-out-of-range"
    ),
    pytest.param(
        lambda r: r["comparison"].update(primary_metric="log_loss", floor=0),
        "comparison.floor",
        r"ceiling and must be > 0",
        id="log-loss-floor-zero",
    ),
    pytest.param(
        _set("training", "holdout_days", 28),
        "training.holdout_days",
        r"shorter than the training window.*28 days",
        id="holdout-equals-window",
    ),
    pytest.param(
        _set("training", "holdout_days", 400),
        "training.holdout_days",
        r"less than or equal to 365",
        id="holdout-above-max",
    ),
    pytest.param(
        _set("training", "estimator", "RandomForestClassifier"),
        "training.estimator",
        r"not a dotted class path",
        id="estimator-no-module",
    ),
    pytest.param(
        _set("training", "estimator", "sklearn.ensemble.Random Forest"),
        "training.estimator",
        r"not a dotted class path",
        id="estimator-space",
    ),
    pytest.param(
        _set("training", "estimator", "sklearn.ensemble.RandomForrestClassifier"),
        "training.estimator",
        r"unknown estimator .*has no 'RandomForrestClassifier'",
        id="estimator-typo",
    ),
    pytest.param(
        _set("training", "estimator", "sklearnx.ensemble.RandomForestClassifier"),
        "training.estimator",
        r"module 'sklearnx.ensemble' not found",
        id="estimator-unknown-module",
    ),
    pytest.param(_set("data", "prefix", "../x"), "data.prefix", r"not a safe object prefix", id="prefix-parent"),
    pytest.param(
        _set("data", "prefix", "churn/../../etc"), "data.prefix", r"not a safe object prefix", id="prefix-parent-inside"
    ),
    pytest.param(
        _set("artifacts", "prefix", "./runs"),
        "artifacts.prefix",
        r"not a safe object prefix",
        id="artifacts-prefix-dot",
    ),
    pytest.param(_set("data", "bucket", "Raw_Data"), "data.bucket", r"not a valid S3 bucket name", id="bad-bucket"),
    pytest.param(
        _set("drift.gate", "critical_features", ["monthly_charges", "ghost"]),
        "drift.gate.critical_features",
        r"unknown feature\(s\): ghost\b",
        id="critical-feature-unknown",
    ),
    pytest.param(
        _set("comparison", "slices", {"columns": ["contract", "regoin"]}),
        "comparison.slices.columns",
        r"unknown column\(s\): regoin \(not in features.numeric",
        id="slice-column-unknown",
    ),
    pytest.param(
        _set("comparison", "fairness", {"sensitive": ["gender"], "demographic_parity_difference_max": 0.05}),
        "comparison.fairness.sensitive",
        r"unknown column\(s\): gender\b.*features.attributes",
        id="sensitive-column-unknown",
    ),
    pytest.param(
        _set("comparison", "fairness", {"sensitive": ["region"], "equalized_odds_difference_max": 1.5}),
        "comparison.fairness.equalized_odds_difference_max",
        r"less than or equal to 1",
        id="fairness-limit-above-1",
    ),
    pytest.param(
        _set("comparison", "slices", {"columns": []}),
        "comparison.slices.columns",
        r"at least 1 item",
        id="slices-empty",
    ),
    pytest.param(
        _set("features", "attributes", ["region"]),
        "features",
        r"listed more than once: region",
        id="attribute-also-feature",
    ),
    pytest.param(
        _append("features", "categorical", "tenure_months"),
        "features",
        r"listed more than once: tenure_months",
        id="duplicate-column",
    ),
    pytest.param(
        _top("features", {"target": "churned", "numeric": ["churned", "usage_hours"]}),
        "features",
        r"listed more than once: churned",
        id="target-also-feature",
    ),
    pytest.param(
        _append("features", "numeric", "_partition_date"),
        "features",
        r"reserved by the pipeline: _partition_date",
        id="reserved-column",
    ),
    pytest.param(
        _top("features", {"target": "churned"}), "features", r"at least one numeric or categorical", id="no-features"
    ),
    pytest.param(_top("name", "Churn-Model"), "name", r"lower-case letters", id="bad-name-format"),
    pytest.param(_top("retries", 0), "retries", r"greater than or equal to 1", id="zero-retries"),
    pytest.param(
        _set("validation", "expectations", [{"type": "column_not_null"}]),
        "validation.expectations.0.type",
        r"pattern",
        id="expectation-type-not-gx",
    ),
]


@pytest.mark.parametrize(("mutate", "field", "problem"), BROKEN_CASES)
def test_broken_spec_names_file_field_and_problem(workspace: Path, mutate: Mutation, field: str, problem: str) -> None:
    raw = churn_raw()
    mutate(raw)
    path = write_spec(workspace / "models", raw)
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, field, problem)


def test_several_problems_report_the_first_and_count_the_rest(workspace: Path) -> None:
    raw = churn_raw()
    raw["drift"]["alpha"] = 5
    raw["training"]["window_weeks"] = 0
    path = write_spec(workspace / "models", raw)
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, "drift.alpha", r"less than 1 \(and 1 more problem\(s\)\)")


def test_invalid_yaml_reports_line_number(workspace: Path) -> None:
    path = workspace / "models" / "churn.yaml"
    # Line 4 is indented by one space: not a child of 'data' nor a top-level key.
    path.write_text("name: churn\ndata:\n  bucket: raw-data\n prefix: churn\n", encoding="utf-8")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, None, r"invalid YAML at line 4, column \d+")


def test_invalid_yaml_unclosed_flow_sequence(workspace: Path) -> None:
    path = workspace / "models" / "churn.yaml"
    path.write_text("name: churn\ntags: [a, b\nowner: me\n", encoding="utf-8")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, None, r"invalid YAML at line \d+, column \d+: .+")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- name: churn\n- data: {}\n", "list"), ("just a string\n", "str"), ("42\n", "int")],
)
def test_top_level_must_be_a_mapping(workspace: Path, text: str, kind: str) -> None:
    path = workspace / "models" / "churn.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, None, rf"expected a mapping at the top level, got {kind}")


def test_empty_file_is_rejected(workspace: Path) -> None:
    path = workspace / "models" / "churn.yaml"
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, None, r"expected a mapping at the top level")


def test_parse_spec_rejects_non_mapping_without_reading_a_file() -> None:
    with pytest.raises(ModelSpecError) as info:
        parse_spec(["not", "a", "mapping"], "virtual.yaml")
    assert str(info.value) == "virtual.yaml: expected a mapping at the top level, got list"


def test_unreadable_file(workspace: Path) -> None:
    path = workspace / "models" / "missing.yaml"
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, None, r"cannot read file")


def test_name_must_equal_file_stem(workspace: Path) -> None:
    path = write_spec(workspace / "models", churn_raw(), name="churn_v2")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, "name", r"'churn' must equal the file name 'churn_v2'")


def test_missing_suite_file_names_the_resolved_path(workspace: Path) -> None:
    raw = churn_raw()
    raw["validation"]["suite"] = "../suites/does_not_exist.json"
    path = write_spec(workspace / "models", raw)
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    expected = workspace / "models" / ".." / "suites" / "does_not_exist.json"
    assert_spec_error(info.value, path, "validation.suite", re.escape(f"suite file not found: {expected}"))


def test_suite_path_is_relative_to_the_yaml_not_the_cwd(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped '../suites/churn.json' must not depend on where the process runs."""
    path = write_spec(workspace / "models", churn_raw())
    monkeypatch.chdir(REPO_ROOT / "include" / "models")  # here '../suites/churn.json' also exists
    spec = load_spec(path)
    assert spec.suite_path is not None
    assert spec.suite_path.resolve() == (workspace / "suites" / "churn.json").resolve()


def test_model_spec_error_is_a_value_error_with_attributes() -> None:
    exc = ModelSpecError("a/b.yaml", "drift.alpha", "must be < 1")
    assert isinstance(exc, ValueError)
    assert str(exc) == "a/b.yaml: field 'drift.alpha': must be < 1"
    assert (exc.path, exc.field, exc.problem) == ("a/b.yaml", "drift.alpha", "must be < 1")
    assert str(ModelSpecError(Path("x.yaml"), None, "broken")) == "x.yaml: broken"


# -- load_all -----------------------------------------------------------------------


def test_load_all_keeps_good_specs_next_to_broken_ones(workspace: Path) -> None:
    models = workspace / "models"
    shutil.copy(CHURN_YAML, models / "churn.yaml")  # verbatim: relative suite path resolves
    broken = churn_raw()
    broken["name"] = "beta"
    broken["drift"]["alpha"] = 5
    beta = write_spec(models, broken, name="beta")
    (models / "README.md").write_text("not a spec", encoding="utf-8")
    (models / "notes.txt").write_text("name: [", encoding="utf-8")

    specs, errors = load_all(models)

    assert [s.name for s in specs] == ["churn"]
    assert len(errors) == 1
    assert_spec_error(errors[0], beta, "drift.alpha", r"less than 1")


def test_load_all_reads_yml_and_yaml_in_name_order(workspace: Path) -> None:
    models = workspace / "models"
    write_spec(models, minimal_raw("zeta"), name="zeta")
    (models / "alpha.yml").write_text(yaml.safe_dump(minimal_raw("alpha")), encoding="utf-8")
    (models / "sub.yaml").mkdir()  # a folder named like a spec is not a spec

    assert [p.name for p in spec_files(models)] == ["alpha.yml", "zeta.yaml"]
    specs, errors = load_all(models)
    assert errors == []
    assert [s.name for s in specs] == ["alpha", "zeta"]


def test_load_all_reports_every_broken_file(workspace: Path) -> None:
    models = workspace / "models"
    (models / "a.yaml").write_text("name: a\n  bad: indent\n", encoding="utf-8")
    write_spec(models, {**minimal_raw("b"), "retries": "many"}, name="b")

    specs, errors = load_all(models)
    assert specs == []
    assert [Path(e.path).name for e in errors] == ["a.yaml", "b.yaml"]
    assert errors[0].field is None and "invalid YAML" in errors[0].problem
    assert errors[1].field == "retries"


def test_load_all_on_missing_folder_is_empty(tmp_path: Path) -> None:
    assert load_all(tmp_path / "nope") == ([], [])


# -- config_hash --------------------------------------------------------------------


def _hash_of(workspace: Path, mutate: Mutation | None = None) -> str:
    raw = churn_raw()
    if mutate:
        mutate(raw)
    return load_spec(write_spec(workspace / "models", raw)).config_hash()


def test_config_hash_is_stable_across_loads(workspace: Path) -> None:
    first = _hash_of(workspace)
    second = _hash_of(workspace)
    assert first == second
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    # The hash does not depend on where the file lives (same content, other folder).
    assert load_spec(CHURN_YAML).config_hash() == first


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_set("drift", "alpha", 0.01), id="drift.alpha"),
        pytest.param(
            _set("training", "params", {"max_iter": 151, "learning_rate": 0.1, "random_state": 0}), id="training.params"
        ),
        pytest.param(_set("comparison", "floor", 0.75), id="comparison.floor"),
        pytest.param(_append("features", "numeric", "extra_col"), id="features.numeric"),
        pytest.param(_set("data", "prefix", "churn_v2"), id="data.prefix"),
    ],
)
def test_config_hash_changes_with_behaviour(workspace: Path, mutate: Mutation) -> None:
    assert _hash_of(workspace, mutate) != _hash_of(workspace)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_top("description", "A completely different description."), id="description"),
        pytest.param(_top("owner", "someone-else"), id="owner"),
        pytest.param(_top("tags", ["other"]), id="tags"),
    ],
)
def test_config_hash_ignores_documentation_fields(workspace: Path, mutate: Mutation) -> None:
    assert _hash_of(workspace, mutate) == _hash_of(workspace)


def test_config_hash_changes_when_the_suite_file_changes(workspace: Path) -> None:
    before = _hash_of(workspace)
    suite = workspace / "suites" / "churn.json"
    suite.write_text(suite.read_text(encoding="utf-8").replace("10000000", "20000000"), encoding="utf-8")
    assert _hash_of(workspace) != before


def test_config_hash_of_equal_specs_is_equal_regardless_of_key_order(workspace: Path) -> None:
    raw = churn_raw()
    reordered = dict(reversed(list(copy.deepcopy(raw).items())))
    reordered["training"]["params"] = dict(reversed(list(raw["training"]["params"].items())))
    a = load_spec(write_spec(workspace / "models", raw)).config_hash()
    b = load_spec(write_spec(workspace / "models", reordered)).config_hash()
    assert a == b


def test_model_spec_direct_construction_validates_too() -> None:
    """The cross-field checks live in the model, so direct construction cannot bypass them."""
    raw = churn_raw()
    raw["validation"]["suite"] = str(CHURN_SUITE)
    spec = ModelSpec.model_validate(raw)
    assert spec.source_path == ""
    assert spec.suite_path == CHURN_SUITE
    raw["training"]["holdout_days"] = 99
    with pytest.raises(pydantic.ValidationError, match="shorter than the training window"):
        ModelSpec.model_validate(raw)


# -- the content-hash cache ---------------------------------------------------------


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RETRAIN_SPEC_CACHE", raising=False)
    clear_spec_cache()
    yield
    clear_spec_cache()


def _age(path: Path, seconds: float = 60.0) -> None:
    """Move a file's mtime into the past, so its stat is trusted (not 'racy')."""
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_cache_returns_the_validated_spec_without_revalidating(
    workspace: Path, fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(workspace / "models", churn_raw())
    _age(path)
    first = load_spec(path)
    assert spec_cache_info().misses == 1

    # A second load must not parse or validate again: make both impossible and load.
    monkeypatch.setattr(config_module.ModelSpec, "model_validate", _explode)
    monkeypatch.setattr(config_module, "_YAML_LOADER", None)
    second = load_spec(path)
    assert second is first
    info = spec_cache_info()
    assert (info.hits, info.misses, info.entries) == (1, 1, 1)


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("validated again although the file did not change")


def test_cached_spec_equals_an_uncached_load(
    workspace: Path, fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(workspace / "models", churn_raw())
    cached = [load_spec(path) for _ in range(3)][-1]
    monkeypatch.setenv("RETRAIN_SPEC_CACHE", "0")
    uncached = load_spec(path)
    assert uncached is not cached
    assert uncached.model_dump() == cached.model_dump()
    assert uncached.config_hash() == cached.config_hash()


def test_libyaml_loader_builds_what_the_python_safe_loader_builds() -> None:
    # Independent oracle: PyYAML's pure-Python SafeLoader on the shipped spec and a spec with
    # every scalar kind a model YAML uses (dates, floats, nulls, bools, nested flow mappings).
    for text in (
        CHURN_YAML.read_text(encoding="utf-8"),
        "a: 2026-01-04\nb: 1e-3\nc: ~\nd: [yes, no, 'x']\ne: {f: 0.70, g: -1}\n",
    ):
        assert yaml.load(text, Loader=config_module._YAML_LOADER) == yaml.load(text, Loader=yaml.SafeLoader)


def test_a_rewrite_within_the_same_second_and_size_is_seen(workspace: Path, fresh_cache: None) -> None:
    """Same size, written at once: the stat may not change (coarse timestamps), the hash does."""
    raw = churn_raw()
    path = write_spec(workspace / "models", raw)
    assert load_spec(path).drift.alpha == pytest.approx(0.05)
    raw["drift"]["alpha"] = 0.04  # same number of characters
    before = path.stat()
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # identical stat key
    assert path.stat().st_size == before.st_size
    assert load_spec(path).drift.alpha == pytest.approx(0.04)


def test_a_changed_file_is_validated_again(workspace: Path, fresh_cache: None) -> None:
    raw = churn_raw()
    path = write_spec(workspace / "models", raw)
    _age(path)
    load_spec(path)
    raw["drift"]["alpha"] = 5
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, "drift.alpha", "less than 1")
    assert spec_cache_info().misses == 2


def test_a_touched_but_unchanged_file_is_not_validated_again(
    workspace: Path, fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(workspace / "models", churn_raw())
    _age(path, 120)
    first = load_spec(path)
    _age(path, 60)  # new mtime, same bytes
    monkeypatch.setattr(config_module.ModelSpec, "model_validate", _explode)
    assert load_spec(path) is first


def test_a_broken_file_is_reported_again_from_the_cache(workspace: Path, fresh_cache: None) -> None:
    path = workspace / "models" / "churn.yaml"
    path.write_text("name: churn\ndata: [unclosed\n", encoding="utf-8")
    _age(path)
    errors = []
    for _ in range(2):
        with pytest.raises(ModelSpecError) as info:
            load_spec(path)
        errors.append(info.value)
    assert errors[0] is not errors[1]  # a fresh exception each time
    assert str(errors[0]) == str(errors[1]) and "invalid YAML" in errors[1].problem
    assert (spec_cache_info().hits, spec_cache_info().misses) == (1, 1)


def test_suite_file_is_part_of_the_key(workspace: Path, fresh_cache: None) -> None:
    path = write_spec(workspace / "models", churn_raw())
    suite = workspace / "suites" / "churn.json"
    _age(path)
    _age(suite)
    first = load_spec(path)
    first_hash = first.config_hash()

    # The suite disappears: the unchanged spec is now an error, not a stale success.
    moved = suite.with_suffix(".bak")
    suite.rename(moved)
    with pytest.raises(ModelSpecError) as info:
        load_spec(path)
    assert_spec_error(info.value, path, "validation.suite", "suite file not found")

    # It comes back with other content: validated again, and config_hash follows the suite.
    moved.rename(suite)
    suite.write_text(suite.read_text(encoding="utf-8").replace("10000000", "20000000"), encoding="utf-8")
    again = load_spec(path)
    assert again is not first
    assert again.config_hash() != first_hash
    assert spec_cache_info().misses == 3


def test_cache_can_be_switched_off(workspace: Path, fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_SPEC_CACHE", "off")
    path = write_spec(workspace / "models", churn_raw())
    a, b = load_spec(path), load_spec(path)
    assert a is not b and a == b
    info = spec_cache_info()
    assert (info.hits, info.misses, info.entries, info.enabled) == (0, 0, 0, False)


def test_load_all_is_served_from_the_cache_and_sees_new_files(workspace: Path, fresh_cache: None) -> None:
    models = workspace / "models"
    for name in ("a", "b"):
        _age(write_spec(models, minimal_raw(name), name=name))
    first, _ = load_all(models)
    again, _ = load_all(models)
    assert [s.name for s in again] == ["a", "b"] and all(x is y for x, y in zip(first, again))
    write_spec(models, minimal_raw("c"), name="c")
    third, errors = load_all(models)
    assert errors == [] and [s.name for s in third] == ["a", "b", "c"]
    assert third[0] is first[0]


def test_estimator_is_looked_up_once_per_path_while_the_cache_is_on(
    workspace: Path, fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet names a few estimators: the module lookup (it reads the module's source) runs once
    per estimator path, and again after clear_spec_cache or on every load with the cache off."""
    calls: list[str] = []
    find = config_module._find_estimator_problem

    def counting(path: str) -> str | None:
        calls.append(path)
        return find(path)

    monkeypatch.setattr(config_module, "_find_estimator_problem", counting)
    models = workspace / "models"
    for name in ("a", "b", "c"):
        raw = minimal_raw(name)
        raw["training"] = {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier"}
        write_spec(models, raw, name=name)
    specs, errors = load_all(models)
    assert errors == [] and len(specs) == 3
    assert len(calls) == 1
    typo = minimal_raw("d")
    typo["training"] = {"estimator": "sklearn.ensemble.RandomForrestClassifier"}
    write_spec(models, typo, name="d")
    for _ in range(2):  # the remembered problem is reported again, as the spec cache does
        _, errors = load_all(models)
        assert [e.field for e in errors] == ["training.estimator"]
        assert "has no 'RandomForrestClassifier'" in str(errors[0])
    assert len(calls) == 2
    clear_spec_cache()
    load_all(models)
    assert len(calls) == 4
    monkeypatch.setenv("RETRAIN_SPEC_CACHE", "off")
    load_all(models)
    assert len(calls) == 8


def test_slice_and_fairness_blocks_accept_features_and_attributes(workspace: Path) -> None:
    raw = churn_raw()
    raw["features"]["attributes"] = ["gender"]
    raw["comparison"]["slices"] = {"columns": ["contract", "tenure_months", "gender"], "min_rows": 50}
    raw["comparison"]["fairness"] = {
        "sensitive": ["gender", "region"],
        "demographic_parity_difference_max": 0.05,
        "equalized_odds_difference_max": 0.1,
    }
    spec = load_spec(write_spec(workspace / "models", raw))
    assert spec.features.attributes == ["gender"]
    assert spec.features.feature_columns == [*raw["features"]["numeric"], *raw["features"]["categorical"]]
    assert spec.comparison.slices.columns == ["contract", "tenure_months", "gender"]
    assert spec.comparison.slices.alpha == 0.05 and spec.comparison.slices.tolerance == 0.0
    assert spec.comparison.fairness.equalized_odds_difference_max == 0.1
    assert spec.comparison.fairness.min_group_rows == 30
    assert load_spec(CHURN_YAML).comparison.slices is None  # off unless configured


def test_attributes_must_exist_in_the_data_when_schema_checks_are_on(workspace: Path) -> None:
    from include.retrainer.steps import suite_expectations

    raw = churn_raw()
    raw["features"]["attributes"] = ["gender"]
    spec = load_spec(write_spec(workspace / "models", raw))
    exists = [e["kwargs"]["column"] for e in suite_expectations(spec) if e["type"] == "expect_column_to_exist"]
    assert "gender" in exists and "contract" in exists
