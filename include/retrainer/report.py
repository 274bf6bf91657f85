"""One self-contained HTML page per run: what was decided, why, and the evidence.

Pure: the run summary, the drift report (drift.json), the comparison (comparison.json),
lineage.json and optional bounded samples of the raw distributions in; one HTML string
out. Plots are matplotlib PNGs inlined as base64 (Agg backend, imported only when a plot
is drawn), styles are inline: the file opens offline, from S3, as an MLflow artifact or
as an e-mail attachment.

Every input may be partial or missing (a failed run). A section whose data is absent says
so; a plot that cannot be drawn is replaced by a one-line note. ``render_report`` never
raises on content.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from include.retrainer.notify import fmt_num, get, key_numbers, mcnemar_verdict_note, outcome_label, week_label

#: At most this many values per side go into a distribution plot (the caller samples).
MAX_PLOT_VALUES = 5000
#: Categories shown per categorical plot; the rest are summed into "(other)".
MAX_CATEGORIES = 12

_COLOURS = {
    "promoted": "#1e7e34",
    "rejected": "#a71d2a",
    "skipped": "#5a6268",
    "failed": "#a71d2a",
    "awaiting_approval": "#b36b00",
}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.badge{display:inline-block;color:#fff;padding:.15em .6em;border-radius:.3em;font-weight:600}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
.fired,.drifted,.fail{color:#a71d2a;font-weight:600} .quiet,.ok{color:#1e7e34} .muted{color:#777}
.headline{font-size:1.1em;background:#f8f9fa;border-left:4px solid #888;padding:.6em 1em}
img.plot{width:260px;height:auto}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """Rows of already-escaped HTML cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td class='num'>{c}</td>" if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    rows = [(f"<b>{_e(k)}</b>", v) for k, v in pairs if v not in (None, "")]
    if not rows:
        return "<p class='muted'>nothing recorded</p>"
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _link(url: str | None, text: str) -> str:
    return f"<a href='{html.escape(url, quote=True)}'>{_e(text)}</a>" if url else _e(text)


# ---------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------
def distribution_plot(name: str, reference: Sequence[Any], current: Sequence[Any], kind: str) -> str:
    """A small reference-vs-batch plot as a ``data:image/png;base64,...`` URI.

    ``kind`` "numeric": overlaid density histograms on shared bins; "categorical": side by
    side bars of category shares. Raises on unusable input (the caller turns that into a
    note).
    """
    import matplotlib
    import numpy as np

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.6, 2.2), dpi=90)
    try:
        if kind == "numeric":
            ref = np.asarray(reference, dtype=float)[:MAX_PLOT_VALUES]
            cur = np.asarray(current, dtype=float)[:MAX_PLOT_VALUES]
            ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
            if ref.size == 0 or cur.size == 0:
                raise ValueError(f"{name}: no finite values to plot")
            both = np.concatenate([ref, cur])
            lo, hi = float(np.quantile(both, 0.005)), float(np.quantile(both, 0.995))
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, 31).tolist()
            ax.hist(ref, bins=bins, density=True, alpha=0.55, label="reference", color="#1f77b4")
            ax.hist(cur, bins=bins, density=True, alpha=0.55, label="batch", color="#ff7f0e")
        else:
            ref_text = [str(v) for v in list(reference)[:MAX_PLOT_VALUES]]
            cur_text = [str(v) for v in list(current)[:MAX_PLOT_VALUES]]
            if not ref_text or not cur_text:
                raise ValueError(f"{name}: no values to plot")
            cats, counts = np.unique(np.array(ref_text + cur_text), return_counts=True)
            order = [c for _, c in sorted(zip(-counts, cats))][:MAX_CATEGORIES]

            def shares(values: list[str]) -> list[float]:
                n = len(values)
                return [sum(v == c for v in values) / n for c in order]

            x = np.arange(len(order))
            ax.bar(x - 0.2, shares(ref_text), width=0.4, label="reference", color="#1f77b4")
            ax.bar(x + 0.2, shares(cur_text), width=0.4, label="batch", color="#ff7f0e")
            ax.set_xticks(x, [c[:10] for c in order], rotation=45, ha="right", fontsize=6)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------
def _decision_section(summary: Mapping[str, Any], links: Mapping[str, str]) -> str:
    decision = str(summary.get("decision") or "failed")
    colour = _COLOURS.get(decision, "#a71d2a")
    reasons = [r for r in (summary.get("reasons") or []) if r]
    headline = summary.get("headline") or (reasons[0] if reasons else "No summary was recorded for this run.")
    parts = [
        f"<h1>{_e(summary.get('model') or 'model ?')}: week {_e(week_label(summary))}</h1>",
        f"<p><span class='badge' style='background:{colour}'>{_e(outcome_label(summary))}</span> "
        f"<span class='muted'>trigger: {_e(summary.get('trigger') or '-')}; "
        f"decision code: {_e(summary.get('decision_code') or '-')}</span></p>",
        f"<p class='headline'>{_e(headline)}</p>",
    ]
    if reasons:
        parts.append("<h2>Why</h2><ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    approval = summary.get("approval")
    if isinstance(approval, Mapping):
        rows = [
            ("outcome", approval.get("outcome")),
            ("decided by", approval.get("decided_by") or "-"),
            ("decided at", approval.get("decided_at") or "-"),
            ("comment", approval.get("comment") or "-"),
            ("requested at", approval.get("requested_at") or "-"),
            ("times out at", approval.get("timeout_at") or "-"),
            ("on timeout", approval.get("on_timeout")),
            ("why", approval.get("reason")),
        ]
        if approval.get("reused"):
            rows.append(("reused", f"decision recorded by run {approval.get('dag_run_id')}"))
        parts.append("<h2>Approval</h2>" + _kv([(k, _e(v)) for k, v in rows]))
    parts.append(_reinstatement_section(summary))
    numbers = key_numbers(summary)
    if numbers:
        parts.append("<h2>Key numbers</h2>" + _kv([(k, _e(v)) for k, v in numbers.items()]))
    if links:
        parts.append("<h2>Links</h2><ul>" + "".join(f"<li>{_link(u, k)}</li>" for k, u in links.items() if u) + "</ul>")
    sup = summary.get("supersedes")
    if isinstance(sup, Mapping):
        parts.append(
            f"<p class='muted'>This run replaces the earlier run {_e(sup.get('dag_run_id'))} of the same "
            f"interval (decision then: {_e(sup.get('decision'))}; its summary: {_e(sup.get('summary_uri'))}).</p>"
        )
    notes = summary.get("notifications")
    if isinstance(notes, list) and notes:
        note_rows = [
            (_e(n.get("channel")), _e("sent" if n.get("ok") else "FAILED"), _e(n.get("attempts")), _e(n.get("error")))
            for n in notes
            if isinstance(n, Mapping)
        ]
        parts.append("<h3>Notifications</h3>" + _table(["channel", "delivery", "attempts", "error"], note_rows))
    return "\n".join(parts)


def _reinstatement_section(summary: Mapping[str, Any]) -> str:
    """Earlier champions judged this run (before training on the batch, after it on the held-out rows)."""
    judged: list[tuple[str, Mapping[str, Any]]] = []
    for where, rec in (
        ("batch", get(summary, "drift", "reinstatement")),
        ("held-out rows", summary.get("reinstatement")),
    ):
        if isinstance(rec, Mapping) and rec not in [r for _, r in judged]:
            judged.append((where, rec))
    if not judged:
        return ""
    parts = ["<h2>Earlier champions</h2>"]
    for where, rec in judged:
        parts.append(
            f"<p>Judged on the {_e(rec.get('judged_on') or where)} against the {_e(rec.get('winner'))}: {_e(rec.get('reason'))}</p>"
        )
        rows = [
            (
                _e(f"v{c.get('key')}"),
                _e(str(c.get("trained_through") or "")[:10]),
                _e(fmt_num(c.get("effect"))),
                _e(fmt_num(c.get("ci_low"))),
                _e(fmt_num(c.get("p_value"))),
                _e("yes" if c.get("passed") else "no"),
                _e(c.get("error") or "; ".join(map(str, c.get("reasons") or []))[:400]),
            )
            for c in rec.get("candidates") or []
            if isinstance(c, Mapping)
        ]
        parts.append(
            _table(
                ["version", "trained to", "effect", "lower bound", "p", "passed", "reasons"], rows, numeric=(2, 3, 4)
            )
        )
    return "\n".join(parts)


def _gate_section(drift: Mapping[str, Any] | None) -> str:
    if not drift:
        return "<h2>Drift gate</h2><p class='muted'>The drift step did not run (or left no report).</p>"
    parts = [
        "<h2>Drift gate</h2>",
        _kv(
            [
                ("retrain", _e("yes" if drift.get("gate") else "no")),
                ("reason", _e(drift.get("reason"))),
                ("rule", _e(drift.get("rule"))),
                (
                    "champion age (weeks)",
                    _e(fmt_num(drift.get("champion_age_weeks"), 2))
                    if drift.get("champion_age_weeks") is not None
                    else None,
                ),
                ("reference", _e(drift.get("reference_uri"))),
                (
                    "reference / batch rows",
                    _e(f"{fmt_num(drift.get('reference_rows'))} / {fmt_num(drift.get('batch_rows'))}")
                    if drift.get("reference_rows") is not None
                    else None,
                ),
            ]
        ),
    ]
    signals = [s for s in (drift.get("signals") or []) if isinstance(s, Mapping)]
    if signals:
        rows = [
            (
                _e(s.get("name")),
                f"<span class='{_e(s.get('status'))}'>{_e(s.get('status'))}</span>",
                _e(fmt_num(s.get("statistic"))),
                _e(fmt_num(s.get("threshold"))),
                _e(fmt_num(s.get("p_value"))),
                _e(fmt_num(s.get("alpha"))),
                _e(s.get("summary")),
            )
            for s in signals
        ]
        parts.append(
            "<h3>Model-aware signals</h3>"
            + _table(["signal", "status", "statistic", "threshold", "p-value", "alpha", "summary"], rows, (2, 3, 4, 5))
        )
    return "\n".join(parts)


def _features_section(drift: Mapping[str, Any] | None, samples: Mapping[str, Mapping[str, Any]] | None) -> str:
    features = (drift or {}).get("features") or {}
    if not isinstance(features, Mapping) or not features:
        return "<h2>Drift per feature</h2><p class='muted'>No per-feature statistics (cold start, no lineage, or no drift step).</p>"
    importance = (drift or {}).get("importance") or {}
    rows = []
    for col in sorted(
        features, key=lambda c: (not (features[c] or {}).get("drifted"), -float(importance.get(c) or 0), c)
    ):
        f = features[col] if isinstance(features[col], Mapping) else {}
        effect = f.get("effect") or {}
        effect_txt = ", ".join(f"{k}={fmt_num(v, 3)}" for k, v in effect.items()) if isinstance(effect, Mapping) else ""
        verdict = "<span class='drifted'>drifted</span>" if f.get("drifted") else "<span class='quiet'>no drift</span>"
        plot = ""
        sample = (samples or {}).get(col)
        if sample is not None:
            try:
                uri = distribution_plot(
                    col,
                    sample.get("reference", []),
                    sample.get("current", []),
                    "categorical" if sample.get("kind") == "categorical" else "numeric",
                )
                plot = f"<img class='plot' alt='{_e(col)}: reference vs batch' src='{uri}'>"
            except Exception as exc:  # a plot never breaks the report
                plot = f"<span class='muted'>plot unavailable: {_e(type(exc).__name__)}: {_e(exc)}</span>"
        rows.append(
            (
                f"<b>{_e(col)}</b>",
                _e(f.get("method")),
                _e(fmt_num(f.get("statistic"))),
                _e(fmt_num(f.get("threshold"))),
                _e(fmt_num(f.get("p_value"))),
                _e(fmt_num(f.get("p_value_adjusted"))),
                verdict,
                _e(fmt_num(importance.get(col), 3)) if col in importance else "",
                _e(effect_txt),
                _e(f"{fmt_num(f.get('n_reference'))} / {fmt_num(f.get('n_current'))}"),
                _e(f.get("note")),
                plot,
            )
        )
    return "<h2>Drift per feature</h2>" + _table(
        [
            "feature",
            "method",
            "statistic",
            "threshold",
            "p-value",
            "p adjusted",
            "verdict",
            "importance share",
            "effect",
            "n ref / batch",
            "note",
            "reference vs batch",
        ],
        rows,
        (2, 3, 4, 5, 7),
    )


def _comparison_section(summary: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    comp = summary.get("comparison") or {}
    metrics = summary.get("metrics") or (comparison or {}).get("metrics") or {}
    champion, challenger = (metrics.get("champion") or {}), (metrics.get("challenger") or {})
    if not comp and not champion and not challenger:
        return "<h2>Comparison</h2><p class='muted'>No challenger was compared in this run.</p>"
    parts = [
        "<h2>Comparison</h2>",
        _kv(
            [
                ("policy", _e(comp.get("policy"))),
                ("outcome", _e(comp.get("outcome_code"))),
                (
                    "held-out rows",
                    _e(fmt_num(comp.get("holdout_rows"))) if comp.get("holdout_rows") is not None else None,
                ),
                ("stale challenger", _e("yes") if comp.get("stale") else None),
            ]
        ),
    ]
    pt = comp.get("paired_test") or {}
    cis: dict[str, tuple[Any, Any]] = {}
    if pt.get("metric"):
        cis[pt["metric"]] = (pt.get("ci_low"), pt.get("ci_high"))
    names = sorted(set(champion) | set(challenger))
    if names:
        rows = []
        for m in names:
            a, b = champion.get(m), challenger.get(m)
            diff = (b - a) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            lo, hi = cis.get(m, (None, None))
            ci = f"{fmt_num(lo)} .. {fmt_num(hi)}" if lo is not None or hi is not None else ""
            rows.append((_e(m), _e(fmt_num(a)), _e(fmt_num(b)), _e(fmt_num(diff)), _e(ci)))
        parts.append(
            "<h3>Metrics on the same held-out rows</h3>"
            + _table(
                ["metric", "champion", "challenger", "challenger - champion", "CI of the difference"], rows, (1, 2, 3)
            )
        )
    if pt:
        conf = pt.get("confidence")
        parts.append(
            "<h3>Paired test of the primary metric</h3>"
            + _kv(
                [
                    ("metric", _e(pt.get("metric"))),
                    ("method", _e(pt.get("method"))),
                    ("champion / challenger", _e(f"{fmt_num(pt.get('champion'))} / {fmt_num(pt.get('challenger'))}")),
                    ("effect (challenger - champion)", _e(fmt_num(pt.get("effect")))),
                    ("standard error", _e(fmt_num(pt.get("se")))),
                    (
                        f"{fmt_num(conf * 100 if isinstance(conf, (int, float)) else None, 3)}% confidence interval",
                        _e(f"{fmt_num(pt.get('ci_low'))} .. {fmt_num(pt.get('ci_high'))}"),
                    ),
                    ("null value", _e(fmt_num(pt.get("null_value")))),
                    ("p-value", _e(fmt_num(pt.get("p_value")))),
                    ("minimum detectable effect", _e(fmt_num(pt.get("mde")))),
                    ("n", _e(fmt_num(pt.get("n")))),
                ]
            )
        )
    mc = summary.get("mcnemar") or (comparison or {}).get("mcnemar")
    if isinstance(mc, Mapping) and mc.get("b") is not None:
        cell = lambda v: _e(fmt_num(v))  # noqa: E731
        parts.append(
            "<h3>McNemar: per-row correctness</h3>"
            "<table><tr><th></th><th>challenger right</th><th>challenger wrong</th></tr>"
            f"<tr><th>champion right</th><td class='num'>{cell(mc.get('both_right'))}</td><td class='num'>b = {cell(mc.get('b'))}</td></tr>"
            f"<tr><th>champion wrong</th><td class='num'>c = {cell(mc.get('c'))}</td><td class='num'>{cell(mc.get('both_wrong'))}</td></tr>"
            "</table>"
            f"<p>method {_e(mc.get('method'))}, n = {cell(mc.get('n'))}, p = {cell(mc.get('p_value'))}"
            f"{_e(mcnemar_verdict_note(comp.get('mcnemar_verdict') or (comparison or {}).get('mcnemar_verdict'), pt.get('metric')))}</p>"
        )
    checks = comp.get("checks") or (comparison or {}).get("checks") or {}
    if isinstance(checks, Mapping) and checks:
        parts.append(
            "<h3>Checks</h3>"
            + _table(
                ["check", "result"],
                [
                    (_e(k), "<span class='ok'>pass</span>" if v else "<span class='fail'>fail</span>")
                    for k, v in checks.items()
                ],
            )
        )
    return "\n".join(parts)


def _verdict(passed: Any) -> str:
    return "<span class='ok'>passed</span>" if passed else "<span class='fail'>BLOCKED</span>"


def _est(e: Any) -> str:
    if not isinstance(e, Mapping) or e.get("value") is None:
        return ""
    ci = f" ({fmt_num(e.get('ci_low'))} .. {fmt_num(e.get('ci_high'))})" if e.get("ci_low") is not None else ""
    return _e(f"{fmt_num(e.get('value'))}{ci}")


def _slices_section(summary: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    rep = summary.get("slices") or (comparison or {}).get("slices")
    if not isinstance(rep, Mapping):
        return "<h2>Slices</h2><p class='muted'>No slice gate configured (comparison.slices), or no comparison ran.</p>"
    if rep.get("not_run"):
        return f"<h2>Slices</h2><p class='fail'>Not run: {_e(rep.get('not_run'))}</p>"
    conf = 1 - float(rep.get("alpha") or 0.05)
    parts = [
        "<h2>Slices</h2>",
        _kv(
            [
                ("verdict", _verdict(rep.get("passed"))),
                ("metric", _e(rep.get("metric"))),
                (
                    "test",
                    _e(
                        f"paired, one-sided 'challenger worse by more than {fmt_num(rep.get('tolerance'))}', "
                        f"{rep.get('correction')} correction at {fmt_num(rep.get('alpha'))} over "
                        f"{rep.get('judged')} judged slice(s)"
                    ),
                ),
                ("minimum rows per slice", _e(fmt_num(rep.get("min_rows")))),
                ("too small to judge", _e(fmt_num(rep.get("too_small")))),
            ]
        ),
    ]
    rows = []
    for s in rep.get("slices") or []:
        status = s.get("status")
        cls = "fail" if s.get("worse") else ("muted" if status != "judged" else "ok")
        label = (
            "WORSE"
            if s.get("worse")
            else {"judged": "ok", "too_small": "too small to judge"}.get(status, str(status).replace("_", " "))
        )
        diff = ""
        if s.get("effect") is not None:
            diff = (
                f"{fmt_num(s.get('effect'))} ({fmt_num(s.get('effect_ci_low'))} .. {fmt_num(s.get('effect_ci_high'))})"
            )
        rows.append(
            (
                _e(f"{s.get('column')}={s.get('value')}"),
                _e(fmt_num(s.get("rows"))),
                _est(s.get("champion")),
                _est(s.get("challenger")),
                _e(diff),
                _e(fmt_num(s.get("p_worse"))),
                _e(fmt_num(s.get("p_adjusted"))),
                f"<span class='{cls}'>{_e(label)}</span>",
            )
        )
    if rows:
        parts.append(
            _table(
                [
                    "slice",
                    "rows",
                    f"champion ({fmt_num(conf * 100, 3)}% CI)",
                    f"challenger ({fmt_num(conf * 100, 3)}% CI)",
                    "challenger - champion (CI)",
                    "p (worse)",
                    "p (Holm)",
                    "verdict",
                ],
                rows,
                (1,),
            )
        )
    bad = {k: v for k, v in (rep.get("columns") or {}).items() if isinstance(v, Mapping) and v.get("status") != "ok"}
    if bad:
        parts.append(
            "<ul>" + "".join(f"<li class='fail'>{_e(k)}: {_e(v.get('note'))}</li>" for k, v in bad.items()) + "</ul>"
        )
    return "\n".join(parts)


def _fairness_section(summary: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    rep = summary.get("fairness") or (comparison or {}).get("fairness")
    if not isinstance(rep, Mapping):
        return "<h2>Fairness</h2><p class='muted'>No fairness gate configured (comparison.fairness), or no comparison ran.</p>"
    if rep.get("not_run"):
        return f"<h2>Fairness</h2><p class='fail'>Not run: {_e(rep.get('not_run'))}</p>"
    limits = rep.get("limits") or {}
    parts = [
        "<h2>Fairness</h2>",
        _kv(
            [
                ("verdict", _verdict(rep.get("passed"))),
                (
                    "limits",
                    _e(
                        ", ".join(f"{k.replace('_', ' ')} <= {fmt_num(v)}" for k, v in limits.items() if v is not None)
                        or "none (reported only)"
                    ),
                ),
                ("minimum rows per group", _e(fmt_num(rep.get("min_group_rows")))),
                ("blocked by", _e(", ".join(rep.get("blocked_by") or [])) or None),
            ]
        ),
    ]
    for column, info in (rep.get("attributes") or {}).items():
        if not isinstance(info, Mapping) or "challenger" not in info:
            parts.append(
                f"<h3>{_e(column)}</h3><p class='fail'>{_e((info or {}).get('status'))}: "
                f"{_e((info or {}).get('note'))}</p>"
            )
            continue
        ch, cp = info.get("challenger") or {}, info.get("champion") or {}
        over = set(info.get("over_limit") or [])
        rows = []
        for m in ("demographic_parity_difference", "equalized_odds_difference"):
            flag = "<span class='fail'>over limit</span>" if m in over else ""
            rows.append(
                (
                    _e(m.replace("_", " ")),
                    _e(fmt_num(cp.get(m))) if cp else "",
                    _e(fmt_num(ch.get(m))),
                    _e(fmt_num(limits.get(m))),
                    flag,
                )
            )
        parts.append(
            f"<h3>{_e(column)}</h3>" + _table(["disparity", "champion", "challenger", "limit", ""], rows, (1, 2, 3))
        )
        groups = [
            (
                _e(g.get("group")),
                _e(fmt_num(g.get("rows"))),
                _e(fmt_num(g.get("positives"))),
                _e(fmt_num(g.get("selection_rate"))),
                _e(fmt_num(g.get("true_positive_rate"))),
                _e(fmt_num(g.get("false_positive_rate"))),
                _e(str(g.get("status")).replace("_", " ")),
            )
            for g in ch.get("groups") or []
        ]
        if groups:
            parts.append(
                "<p>Challenger per group"
                + (f" (positive class {_e(ch.get('positive_class') or ch.get('groups_positive_class'))})")
                + ":</p>"
                + _table(
                    ["group", "rows", "positives", "selection rate", "TPR", "FPR", "status"], groups, (1, 2, 3, 4, 5)
                )
            )
    return "\n".join(parts)


def _validation_section(summary: Mapping[str, Any], links: Mapping[str, str]) -> str:
    val = summary.get("validation")
    if not isinstance(val, Mapping):
        return "<h2>Validation</h2><p class='muted'>Validation did not run.</p>"
    failed = val.get("failed_expectations") or []
    items = "".join(
        f"<li>{_e(x if isinstance(x, str) else (x.get('type') or x) if isinstance(x, Mapping) else x)}</li>"
        for x in failed
    )
    return "<h2>Validation</h2>" + _kv(
        [
            ("result", "<span class='ok'>passed</span>" if val.get("success") else "<span class='fail'>FAILED</span>"),
            ("failed expectations", f"<ul>{items}</ul>" if items else None),
            ("quarantined days", _e(", ".join(map(str, val.get("quarantined_days") or []))) or None),
            ("report", _e(val.get("report_uri"))),
            (
                "Data Docs",
                _link(links.get("Data Docs"), val.get("data_docs_uri") or "Data Docs")
                if val.get("data_docs_uri")
                else None,
            ),
        ]
    )


def _lineage_section(summary: Mapping[str, Any], lineage: Mapping[str, Any] | None) -> str:
    lineage = lineage or {}
    arts = summary.get("artifacts") or {}
    parts = summary.get("partitions") or {}
    dvc = lineage.get("dvc") or {}
    pairs = [
        ("data interval", _e(week_label(summary))),
        (
            "days found / missing",
            _e(f"{len(parts.get('days_found') or [])} / {len(parts.get('days_missing') or [])}") if parts else None,
        ),
        ("batch rows", _e(fmt_num(summary.get("rows"))) if summary.get("rows") is not None else None),
        *[(f"{k} URI", _e(v)) for k, v in arts.items()],
        (
            "training window",
            _e(f"{lineage.get('window_start')} .. {lineage.get('window_end')}")
            if lineage.get("window_start")
            else None,
        ),
        ("partitions sha256", _e(lineage.get("partitions_sha256"))),
        ("DVC md5", _e(dvc.get("md5"))),
        ("DVC remote", _e(dvc.get("remote_url"))),
        ("DVC path", _e(dvc.get("path"))),
        ("train data etag", _e(lineage.get("train_data_etag"))),
        ("code version", _e(summary.get("code_version") or lineage.get("code_version"))),
        ("config hash", _e(summary.get("config_hash") or lineage.get("config_hash"))),
        ("MLflow run", _e(summary.get("mlflow_run_id"))),
        ("Airflow run", _e(" ".join(str(x) for x in (summary.get("dag_id"), summary.get("dag_run_id")) if x))),
        ("summary", _e(summary.get("summary_uri"))),
    ]
    return "<h2>Lineage</h2>" + _kv(pairs)


def render_report(
    summary: Mapping[str, Any] | None,
    *,
    drift_report: Mapping[str, Any] | None = None,
    comparison: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    samples: Mapping[str, Mapping[str, Any]] | None = None,
    links: Mapping[str, str | None] | None = None,
    generated_at: dt.datetime | None = None,
) -> str:
    """The run's HTML report (decision and reasons first, then the evidence).

    ``drift_report`` is drift.json (falls back to ``summary["drift"]``); ``samples`` maps a
    feature to ``{"kind": "numeric"|"categorical", "reference": [...], "current": [...]}``
    (bounded samples, at most ``MAX_PLOT_VALUES`` used per side); ``links`` maps a label to
    a browser URL (only links to things that exist).
    """
    summary = summary if isinstance(summary, Mapping) else {}
    drift = dict(summary.get("drift") or {}) if isinstance(summary.get("drift"), Mapping) else {}
    if isinstance(drift_report, Mapping):
        # drift.json carries more (reference URI, row counts); the summary's copy wins on conflicts
        # only where drift.json has nothing.
        drift = {**drift, **{k: v for k, v in drift_report.items() if v not in (None, {}, [])}}
    clean_links = {k: v for k, v in (links or {}).items() if v}
    when = (generated_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    sections = []
    for render in (
        lambda: _decision_section(summary, clean_links),
        lambda: _gate_section(drift or None),
        lambda: _features_section(drift or None, samples),
        lambda: _comparison_section(summary, comparison),
        lambda: _slices_section(summary, comparison),
        lambda: _fairness_section(summary, comparison),
        lambda: _validation_section(summary, clean_links),
        lambda: _lineage_section(summary, lineage),
    ):
        try:
            sections.append(render())
        except Exception as exc:  # malformed input in one section must not lose the others
            sections.append(
                f"<p class='fail'>This section could not be rendered: {_e(type(exc).__name__)}: {_e(exc)}</p>"
            )
    title = f"{summary.get('model') or 'run'} {week_label(summary)}: {outcome_label(summary)}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(sections)
        + f"<p class='muted'>Generated {when} from summary schema {_e(summary.get('schema_version'))}.</p>"
        "</body></html>"
    )
