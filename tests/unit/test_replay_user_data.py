"""Replaying the policy on a user's own file (scripts/replay_policy.py, benchmarks/user_data.py)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before sklearn loads (see tests/unit/test_replay.py)

import copy
import dataclasses
import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss

from benchmarks.replay import score
from benchmarks.user_data import UserDataError, load_user_stream
from include.retrainer.config import PARTITION_COLUMN, parse_spec
from scripts import replay_policy
from tests.user_file_helper import stationary_rows

FIRST = dt.datetime(2026, 1, 7, 9, 30)  # a Wednesday: the first week is partial


def _rows(weeks: int, per_day: int, flip_week: int | None, classes: int = 2, skip_week: int | None = None, seed=0):
    """Labelled events over ``weeks`` weeks; the concept flips at ``flip_week``; ``skip_week`` holds no rows."""
    rng = np.random.default_rng(seed)
    parts = []
    for day in range(weeks * 7):
        when = FIRST + dt.timedelta(days=day)
        week = (when.date() - dt.date(2026, 1, 4)).days // 7
        if week == skip_week:
            continue
        a, b = rng.normal(size=per_day), rng.normal(size=per_day)
        sign = -1.0 if flip_week is not None and week >= flip_week else 1.0
        score_ = sign * 1.8 * a + 0.7 * b
        if classes == 2:
            y = (rng.random(per_day) < 1 / (1 + np.exp(-score_))).astype(int)
        else:
            y = np.digitize(score_ + rng.normal(0, 0.5, per_day), [-0.8, 0.8])
            y = np.array(["low", "mid", "high"])[y]
        parts.append(
            pd.DataFrame(
                {
                    "created_at": [
                        (when + dt.timedelta(minutes=int(m))).isoformat() for m in rng.integers(0, 600, per_day)
                    ],
                    "a": a,
                    "b": b,
                    "shop": rng.choice(["n", "s"], per_day),
                    "outcome": y,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def binary_file(tmp_path_factory):
    df = _rows(8, 45, flip_week=5, skip_week=3)
    df.loc[7, "outcome"] = None  # one unlabelled row
    path = tmp_path_factory.mktemp("replay") / "orders.csv"
    df.to_csv(path, index=False)
    return path


def test_the_file_is_cut_into_the_weeks_the_dag_would_see(binary_file):
    stream, notes = load_user_stream(binary_file)
    assert stream.name == "orders" and stream.spec_path is None
    starts = [stream.week_start(w) for w in range(stream.weeks)]
    assert all(d.weekday() == 6 for d in starts)  # Sundays: @weekly data intervals
    assert starts[0] == dt.date(2026, 1, 4) and dt.date(2026, 1, 25) not in starts  # week 3 has no rows
    assert stream.weeks == 8 and stream.interval_end(2) == dt.datetime(2026, 1, 25, tzinfo=dt.UTC)
    assert stream.interval_end(3) == dt.datetime(2026, 2, 8, tzinfo=dt.UTC)  # after the gap
    # Training windows are calendar weeks, as the DAG reads them: the gap counts as a week.
    assert len(stream.window(3, 2)) == len(stream.frames[3])
    assert len(stream.window(4, 3)) == len(stream.frames[3]) + len(stream.frames[4])
    assert len(stream.window(2, 3)) == sum(len(f) for f in stream.frames[:3])
    assert any("1 week(s) hold no labelled rows" in n and "2026-01-25" in n for n in notes)
    assert any("1 row(s) without a label (outcome) left out" in n for n in notes)
    assert any("model YAML inferred" in n and "primary metric roc_auc" in n for n in notes)
    for w, f in enumerate(stream.frames):  # every row sits in its week, with the fetch step's day column
        days = pd.to_datetime(f[PARTITION_COLUMN]).dt.date
        assert days.min() >= starts[w] and days.max() < starts[w] + dt.timedelta(days=7)
        assert f["outcome"].notna().all()
    assert sum(len(f) for f in stream.frames) == 8 * 7 * 45 - 7 * 45 - 1
    assert stream.classes == (0.0, 1.0)
    assert "validation" not in stream.spec or "suite" not in stream.spec["validation"]


def test_replay_cli_reports_every_policy_against_the_optimum(binary_file, tmp_path, capsys):
    out, js = tmp_path / "r.md", tmp_path / "r.json"
    rc = replay_policy.main(["--data", str(binary_file), "--cost", "0.01", "--out", str(out), "--json", str(js)])
    assert rc == 0
    fig = json.loads(js.read_text())
    assert set(fig["policies"]) == {"ours", "ours@0.01", "never", "always", "always_if_better"}
    assert fig["primary_metric"] == "roc_auc" and len(fig["week_starts"]) == fig["weeks"] == 8
    costs = fig["costs"]["0.01"]
    assert costs["optimum"] <= min(v for k, v in costs.items() if k != "optimum") + 1e-9
    q = np.array([[np.nan if v is None else v for v in row] for row in fig["quality"]])
    start = fig["start"]
    never = fig["policies"]["never"]
    assert never["served_quality"] == pytest.approx(np.mean(q[start, start + 1 :]), abs=1e-4)
    assert fig["policies"]["always"]["retrains"] == fig["weeks"] - 2 - start
    ours = fig["policies"]["ours"]
    assert [r["week"] for r in ours["records"]] == list(range(fig["weeks"] - 1))
    assert all(r["reason"] for r in ours["records"])
    # The concept flips in week 5 (the 5th week with rows): a model trained after it serves better.
    assert np.nanmax(q[5:, 7]) > q[start, 7] + 0.2
    assert ours["served_quality"] > never["served_quality"]
    printed = capsys.readouterr().out
    assert "| ours (your YAML) |" in printed and "| retrospective optimum |" in printed
    # What stating the retrain cost would have changed, with the figures of the table.
    cheaper = costs["ours@0.01"] < costs["ours"]
    said = f"0.01: {costs['ours@0.01']:.3f} instead of {costs['ours']:.3f}"
    lead = "Stating the retrain cost would " + ("" if cheaper else "not ") + "have cost less on this file at "
    assert lead + said in printed, printed[:3000]
    assert "| retrain every k weeks (k best in hindsight) |" in printed and "; k=" in printed
    assert "Week by week (your YAML; worth" in printed and "2026-02-08" in printed
    # What each retrain was worth, by the signals that asked: every retrain of ours is in one row.
    section = printed.split("What each retrain was worth")[1].split("Week by week")[0]
    audit = [line.split(" | ") for line in section.splitlines() if line.startswith("| ours (your YAML) | ")]
    assert audit and sum(int(cells[2]) for cells in audit) == ours["retrains"], audit
    report = out.read_text()
    assert report.startswith("## Policy replay: orders")
    weeks = [line for line in report.splitlines() if line.startswith("| ") and " | 2026-" in line]
    assert len(weeks) == 7  # one row per decision week, 8 cells each: the reasons' "|" are escaped
    assert all(len(re.split(r"(?<!\\)\|", line)) == 10 for line in weeks), weeks[0]
    # A retrained week says what its retrain won; the others leave the cell empty.
    for line in weeks:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert (cells[6] != "") == (cells[4] == "yes"), cells
    assert "Week 7 (starting 2026-03-01, the last of your data) has no row in the table" in report  # said
    assert "Promotions: every change of champion, an earlier champion reinstated included" in report
    assert "on noise alone" not in report  # 45 rows a day: no small-week warning


def test_replay_uses_the_users_yaml_and_its_metric(tmp_path, capsys):
    df = _rows(6, 40, flip_week=None, classes=3, seed=4)
    data = tmp_path / "tickets.parquet"
    df.to_parquet(data)
    spec = {
        "name": "tickets_triage",
        "data": {"bucket": "raw-data", "prefix": "tickets"},
        "features": {"target": "outcome", "timestamp": "created_at", "numeric": ["a", "b"], "categorical": ["shop"]},
        "training": {
            "params": {"max_iter": 30},
            "window_weeks": 2,
            "holdout_days": 2,
            "min_train_rows": 50,
            "min_holdout_rows": 40,
        },
        "comparison": {"primary_metric": "log_loss"},
        # Validation is not replayed: a suite the YAML names need not exist where it is read.
        "validation": {"suite": "suites/not_here.json"},
    }
    yml = tmp_path / "tickets_triage.yaml"
    yml.write_text(yaml.safe_dump(spec))
    js = tmp_path / "t.json"
    assert replay_policy.main(["--data", str(data), "--spec", str(yml), "--cost", "0.04", "--json", str(js)]) == 0
    fig = json.loads(js.read_text())
    assert fig["stream"] == "tickets_triage" and fig["primary_metric"] == "log_loss"
    # A YAML naming a rule still gets rule cost with the stated cost (else the cost decides nothing).
    from benchmarks.replay import with_retrain_cost

    named = {**spec, "drift": {"gate": {"rule": "any"}}, "validation": {}}
    assert parse_spec(with_retrain_cost(named, 0.04), "t.yaml").drift.gate.rule == "cost"
    assert named["drift"]["gate"] == {"rule": "any"}  # the user's YAML dict is not changed
    q = np.array([[np.nan if v is None else v for v in row] for row in fig["quality"]])
    assert (q[np.isfinite(q)] < 0).all()  # log loss is replayed negated: higher is better throughout
    printed = capsys.readouterr().out
    assert f"Model YAML: `{yml}`." in printed and "served log_loss" in printed
    never = fig["policies"]["never"]["served_quality"]
    assert f"| never retrain | {-never:.4f} |" in printed  # shown as the metric itself


def test_a_week_of_one_class_counts_for_no_policy_and_its_model_still_trains(tmp_path):
    """As in the DAG: a week no model can be scored on counts for no policy, and the model trained
    at its end widens its held-out days into the week before until they hold both classes; the
    replay goes on."""
    df = _rows(6, 40, flip_week=None, seed=5)
    week = (pd.to_datetime(df["created_at"]).dt.date - dt.date(2026, 1, 4)).map(lambda d: d.days // 7)
    df.loc[week == 3, "outcome"] = 0
    data = tmp_path / "events.csv"
    df.to_csv(data, index=False)
    js = tmp_path / "o.json"
    assert replay_policy.main(["--data", str(data), "--cost", "0.01", "--json", str(js)]) == 0
    fig = json.loads(js.read_text())
    assert any("weeks [3]" in n and "undefined" in n for n in fig["notes"]), fig["notes"]
    q = np.array([[np.nan if v is None else v for v in row] for row in fig["quality"]])
    assert np.isnan(q[:, 3]).all()  # nothing scored on it
    assert np.isfinite(q[3, 4:]).all()  # the model trained at its end scores the later weeks
    assert all(math.isfinite(v) for v in fig["costs"]["0.01"].values())


def test_score_is_the_products_metric_oriented_higher_is_better():
    df = _rows(2, 120, flip_week=None, classes=3, seed=9)
    raw = {
        "name": "m",
        "data": {"bucket": "raw-data", "prefix": "p"},
        "features": {"target": "outcome", "numeric": ["a", "b"]},
        "comparison": {"primary_metric": "accuracy"},
    }
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(df[["a", "b"]], df["outcome"])
    classes = tuple(sorted(df["outcome"].unique()))
    acc = score(model, df, parse_spec(raw, "m.yaml"), classes)
    assert acc == pytest.approx(accuracy_score(df["outcome"], model.predict(df[["a", "b"]])))
    raw["comparison"] = {"primary_metric": "log_loss"}
    ll = score(model, df, parse_spec(raw, "m.yaml"), classes)
    assert ll == pytest.approx(-log_loss(df["outcome"], model.predict_proba(df[["a", "b"]]), labels=model.classes_))


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "log_loss", "f1"])
@pytest.mark.parametrize("classes", [2, 3])
def test_scoring_many_weeks_at_once_equals_scoring_each_alone(metric, classes):
    """The quality matrix predicts once per model over all later weeks (speed on long files of
    small weeks); each week's value must be what scoring that week alone gives, and a week the
    metric is undefined on must stay undefined (a single class under roc_auc)."""
    from benchmarks.replay import score_weeks

    df = _rows(5, 40, flip_week=2, classes=classes, seed=4)
    week = (pd.to_datetime(df["created_at"]).dt.date - dt.date(2026, 1, 4)).map(lambda d: d.days // 7)
    frames = [df[week == w].reset_index(drop=True) for w in sorted(week.unique())]
    frames.append(frames[-1].assign(outcome=frames[-1]["outcome"].iloc[0]))  # one class
    raw = {
        "name": "m",
        "data": {"bucket": "raw-data", "prefix": "p"},
        "features": {"target": "outcome", "numeric": ["a", "b"], "categorical": ["shop"]},
        "comparison": {"primary_metric": metric},
    }
    spec = parse_spec(raw, "m.yaml")
    from include.retrainer.training import fit_pipeline

    model = fit_pipeline(spec, pd.concat(frames[:2], ignore_index=True))
    labels = tuple(sorted(df["outcome"].unique()))
    together = score_weeks(model, frames, spec, labels)
    assert len(together) == len(frames)
    for frame, value in zip(frames, together, strict=True):
        try:
            alone = score(model, frame, spec, labels)
        except ValueError:
            assert isinstance(value, ValueError)
            continue
        assert value == pytest.approx(alone, abs=1e-12)
    assert isinstance(together[-1], ValueError) == (metric == "roc_auc")


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda: _rows(1, 60, None), [], "labelled rows fall in only 2 week(s)"),
        (lambda: _rows(4, 30, None), ["--from", "2026-13-01"], "--from '2026-13-01' is not a date"),
        (lambda: _rows(4, 30, None).drop(columns=["created_at"]), [], "no timestamp column"),
        (lambda: _rows(4, 30, None).assign(outcome=1), [], "single class"),
        (
            lambda: _rows(4, 30, None),
            ["--spec", "MISSING_COLUMN"],
            "column(s) the model YAML names are not in the file: c",
        ),
    ],
)
def test_bad_input_stops_with_one_line_naming_the_problem(tmp_path, capsys, make, args, message):
    data = tmp_path / "events.csv"
    make().to_csv(data, index=False)
    if "MISSING_COLUMN" in args:
        yml = tmp_path / "toy.yaml"
        yml.write_text(
            yaml.safe_dump(
                {
                    "name": "toy",
                    "data": {"bucket": "raw-data", "prefix": "p"},
                    "features": {"target": "outcome", "timestamp": "created_at", "numeric": ["a", "c"]},
                }
            )
        )
        args = ["--spec", str(yml)]
    assert replay_policy.main(["--data", str(data), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("replay_policy: ") and message in err[-1], err


def test_a_missing_file_is_named():
    with pytest.raises(UserDataError, match="nope.csv: no such file"):
        load_user_stream("/tmp/nope.csv")


def test_a_file_of_a_few_rows_a_week_gets_a_first_model_by_accumulating_weeks(tmp_path, capsys):
    """Found on a real file (Seattle's daily weather, one row a day): 12 weeks held 84 of the 300
    rows a model needs, so no week ever got a model. The inferred YAML now lets the window widen
    as far as the file's rate needs, and the waiting weeks say how long that takes."""
    df = _rows(50, 1, flip_week=None, seed=11)
    data = tmp_path / "daily.csv"
    df.to_csv(data, index=False)
    js = tmp_path / "o.json"
    assert replay_policy.main(["--data", str(data), "--cost", "0.04", "--json", str(js)]) == 0
    fig = json.loads(js.read_text())
    # 300 rows at 7 a week: 43 weeks (the first week is partial: from a Wednesday).
    assert 42 <= fig["start"] <= 44, fig["start"]
    waiting = fig["cold_start_notes"]
    assert waiting and all("wait for more weeks" in n for n in waiting), waiting[:2]
    assert "(~7.0 a week) the 300 rows a model needs" in waiting[-1] and "take ~43 weeks" in waiting[-1]
    assert fig["policies"]["ours"]["served_quality"] > 0.6  # it then serves like any model
    captured = capsys.readouterr()
    # Served figures on 7 rows a week are mostly noise, and the report says so before anyone reads them.
    assert "Weeks of ~7 rows: a week's roc_auc moves by at least about +/-0.19" in captured.out
    assert "week models: training and scoring week 0 of 49" in captured.err  # progress while it runs


def test_the_window_widens_across_weeks_without_rows_as_the_dag_does(tmp_path):
    """A file with ten empty weeks: the DAG widens a week's window in calendar weeks, back over
    the gap to the rows before it; the replay stopped after as many weeks as it had counted
    weeks with rows, and told the user to wait while the DAG would have trained (found in review)."""
    import copy

    from benchmarks.replay import ModelBank, load_loop
    from benchmarks.user_data import load_user_stream

    rng = np.random.default_rng(0)
    start = dt.date(2024, 1, 7)  # a Sunday
    days = [start + dt.timedelta(days=i) for i in (*range(7 * 6), *range(7 * 16, 7 * 31))]
    rows = []
    for d in days:
        for h in range(5):
            a = rng.normal()
            rows.append({"ts": f"{d}T{10 + h}:00:00Z", "a": a, "b": rng.normal(), "y": int(a + rng.normal() > 0)})
    data = tmp_path / "gap.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    stream, _ = load_user_stream(data, target="y", timestamp="ts")
    raw = copy.deepcopy(stream.spec)
    raw["training"].update(window_weeks=4, max_window_weeks=60)
    loop, _ = load_loop()
    bank = ModelBank(loop, parse_spec(raw, "gap.yaml"), stream)
    # The 9th week with rows is calendar week 18: 6 + 3 weeks of 35 rows = 315 >= 300.
    assert stream.week_start(8) == start + dt.timedelta(weeks=18)
    assert not isinstance(bank.get(8), str), bank.get(8)
    assert bank._weeks[8] == 19  # back to the first week of data, in calendar weeks
    assert isinstance(bank.get(7), str) and "wait for more weeks" in bank.get(7)  # 280 rows: not yet


def test_one_week_the_model_cannot_predict_on_is_undefined_and_the_others_are_scored():
    from benchmarks.replay import score_weeks
    from include.retrainer.training import fit_pipeline

    df = _rows(4, 40, flip_week=None, seed=2)
    week = (pd.to_datetime(df["created_at"]).dt.date - dt.date(2026, 1, 4)).map(lambda d: d.days // 7)
    frames = [df[week == w].reset_index(drop=True) for w in sorted(week.unique())]
    raw = {
        "name": "m",
        "data": {"bucket": "raw-data", "prefix": "p"},
        "features": {"target": "outcome", "numeric": ["a", "b"]},
        "training": {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 3}},
        "comparison": {"primary_metric": "roc_auc"},
    }
    spec = parse_spec(raw, "m.yaml")
    model = fit_pipeline(spec, pd.concat(frames[:2], ignore_index=True))
    frames[2] = frames[2].assign(a=1e39)  # too large for the tree's float32: its predict raises
    values = score_weeks(model, frames, spec, (0, 1))
    assert isinstance(values[2], ValueError)
    others = [(v, f) for i, (v, f) in enumerate(zip(values, frames, strict=True)) if i != 2]
    assert len(others) == len(frames) - 1 and all(v == pytest.approx(score(model, f, spec, (0, 1))) for v, f in others)


def test_the_inferred_yaml_measures_staleness_and_the_replay_reuses_its_models(tmp_path, monkeypatch):
    """Without --spec the YAML is add-model's, whose age limit is measured on the rows
    (include/retrainer/staleness.py); the replay then trains no week model a second time, and
    reusing them gives exactly the replay that training them again gives."""
    from benchmarks.replay import ModelBank, load_loop, replay_stream

    data = tmp_path / "turning.csv"
    _rows(16, 60, flip_week=None, seed=5).to_csv(data, index=False)
    stream, notes = load_user_stream(data, window=False)
    gate = stream.spec["drift"]["gate"]
    assert any(n.startswith("on this file") and "age limit" in n for n in notes), notes
    assert "staleness_rate" in gate and "max_champion_age_weeks" not in gate  # the age follows the rate
    assert stream.trained is not None and len(stream.trained.models) == stream.weeks - 1
    plain, plain_notes = load_user_stream(data, staleness=False, window=False)
    assert plain.spec["drift"]["gate"]["max_champion_age_weeks"] == 4
    assert "staleness_rate" not in plain.spec["drift"]["gate"]
    assert plain.trained is None and not any(n.startswith("on this file") for n in plain_notes)

    builds: list[int] = []
    original = ModelBank._build

    def counting(self, week):
        builds.append(week)
        return original(self, week)

    monkeypatch.setattr(ModelBank, "_build", counting)
    reused = replay_stream(stream, *load_loop(), cost_ratios=(0.01,))
    assert builds == []
    fresh = replay_stream(dataclasses.replace(stream, trained=None), *load_loop(), cost_ratios=(0.01,))
    assert len(builds) == stream.weeks - 1  # the counter counts: without them, each week is built
    np.testing.assert_array_equal(reused.quality, fresh.quality)
    assert reused.policies["ours"].to_dict() == fresh.policies["ours"].to_dict()
    # Models trained under other training settings are never reused.
    other = copy.deepcopy(stream.spec)
    other["training"]["window_weeks"] = 2
    builds.clear()
    replay_stream(dataclasses.replace(stream, spec=other), *load_loop(), cost_ratios=(0.01,))
    assert len(builds) == stream.weeks - 1


def test_staleness_ages_are_calendar_weeks_and_a_partial_first_week_is_no_full_window(tmp_path):
    """A week without rows is a gap in the age grid (a model from before it is older by it), and
    a window reaching back into a first week that starts mid-week is shorter than it looks."""
    from benchmarks.replay import ModelBank, load_loop
    from benchmarks.user_data import age_grid

    data = tmp_path / "gappy.csv"
    _rows(14, 40, flip_week=None, skip_week=7).to_csv(data, index=False)  # starts on a Wednesday
    stream, _ = load_user_stream(data, staleness=False)
    assert stream.weeks == 14 and stream.week_starts[7] == stream.week_starts[6] + dt.timedelta(weeks=2)
    loop, _ = load_loop()
    bank = ModelBank(loop, parse_spec(stream.spec, "gappy.yaml"), stream)
    q, comparable = age_grid(stream, bank, max_age=4)
    assert q.shape == (15, 15)  # 14 weeks with rows over 15 calendar weeks
    assert np.isnan(q[7]).all() and np.isnan(q[:, 7]).all()  # the empty week: no model, no score
    assert not comparable[7].any() and not comparable[:, 7].any()
    # The week-6 model is scored on calendar week 8 as 2 weeks old, not as the next week's model.
    assert np.isfinite(q[6, 8]) and np.isfinite(q[6, 10]) and np.isnan(q[6, 11])
    # Windows of 4 weeks: week 3's reaches back to the partial first week; week 4's does not.
    assert bank._weeks[3] == 4 and bank._weeks[4] == 4
    assert not comparable[3].any() and comparable[4, 5]
    assert not comparable[4, 8]  # 4 calendar weeks apart: beyond max_age - 1


def test_the_inferred_yaml_trains_on_the_window_that_served_best_and_the_replay_reuses_its_models(tmp_path):
    """include/retrainer/window.py: on a stationary file with ~100 rows a week, models trained on
    more weeks score higher on the week after, so the YAML's window is a longer one; the
    replay then reuses that window's models; with window=False the default stays."""
    from benchmarks.replay import training_key

    data = tmp_path / "steady.csv"
    stationary_rows(30, 15).to_csv(data, index=False)
    stream, notes = load_user_stream(data, staleness=False)
    assert stream.spec["training"]["window_weeks"] in (8, 16), notes
    assert stream.spec["training"]["max_window_weeks"] >= stream.spec["training"]["window_weeks"]
    note = next(n for n in notes if n.startswith("training window: "))
    assert (
        "(the highest lower confidence bound of the lead, above 0: roc_auc on the week after, against 4 weeks: " in note
    )
    # 2 weeks hold ~210 rows, fewer than a model needs: widened, so never compared as 2 weeks.
    assert "2 weeks: 0 paired weeks (< 8), not judged" in note and re.search(r"16 weeks \+0\.\d+ \+/- ", note)
    assert stream.trained is not None and stream.trained.training_key == training_key(stream.spec)
    chosen = stream.spec["training"]["window_weeks"]
    assert stream.trained.models and set(stream.trained.window_weeks.values()) <= set(range(chosen, 53))
    plain, plain_notes = load_user_stream(data, staleness=False, window=False)
    assert plain.spec["training"]["window_weeks"] == 4 and plain.trained is None
    assert not any(n.startswith("training window") for n in plain_notes)
