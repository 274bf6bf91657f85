"""scripts/bench.py: sections registered in one list, missing helpers reported, Markdown written.

No benchmark is run here (they take minutes); the harness runs stand-in sections.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import bench


def test_every_required_section_is_registered_once() -> None:
    keys = [s.key for s in bench.SECTIONS]
    assert keys == ["parse", "validation", "drift", "gate", "policy", "overhead", "backfill"]
    assert len(set(keys)) == len(keys)


def test_missing_helper_module_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    text = bench._external_section("bench_does_not_exist", "x", quick=True)
    assert "not available" in text and "scripts/bench_does_not_exist.py" in text
    assert "not available" in capsys.readouterr().out


def test_external_section_uses_the_modules_markdown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys
    import types

    module = types.ModuleType("scripts.bench_fake")
    module.run = lambda quick: {"quick": quick, "rate": 0.05}
    module.markdown = lambda result: f"| rate | {result['rate']} | quick={result['quick']} |\n"
    monkeypatch.setitem(sys.modules, "scripts.bench_fake", module)
    assert bench._external_section("bench_fake", "x", quick=True) == "| rate | 0.05 | quick=True |\n"

    del module.markdown
    module.run = lambda quick: {"markdown": "from the dict\n"}
    assert bench._external_section("bench_fake", "x", quick=False) == "from the dict\n"


def test_main_writes_machine_and_sections_and_survives_a_failing_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[bool] = []

    def good(quick: bool) -> str:
        calls.append(quick)
        return "| a | b |\n"

    def broken(quick: bool) -> str:
        raise RuntimeError("boom in section")

    monkeypatch.setattr(
        bench, "SECTIONS", [bench.Section("good", "Good one", good), bench.Section("bad", "Broken one", broken)]
    )
    out = tmp_path / "bench.md"
    assert bench.main(["--quick", "--out", str(out)]) == 1  # a failed section fails the run
    text = out.read_text(encoding="utf-8")
    assert calls == [True]
    assert "## Machine" in text and "| CPU |" in text and "| Python |" in text and "pandas" in text
    assert "## Good one" in text and "| a | b |" in text
    assert "## Broken one" in text and "boom in section" in text
    assert "quick" in text

    assert bench.main(["--only", "good", "--out", str(out)]) == 0
    assert "Broken one" not in out.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        bench.main(["--only", "nope", "--out", str(out)])


def test_the_policy_section_renders_from_what_its_run_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    # make bench calls run() then markdown(result): the StreamResult objects the report is
    # rendered from must survive run() (they were once dropped there, failing the section).
    from scripts import bench_policy

    sentinel = object()
    monkeypatch.setattr(bench_policy, "_run", lambda quick: {"_results": [sentinel], "all_met": False})
    seen = []
    monkeypatch.setattr(bench_policy, "render_markdown", lambda fig: seen.append(fig["_results"]) or "md")
    assert bench_policy.markdown(bench_policy.run(quick=True)) == "md"
    assert seen == [[sentinel]]
