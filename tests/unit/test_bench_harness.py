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

    # --only into a file that holds other sections would drop them: refused, use --update
    with pytest.raises(SystemExit):
        bench.main(["--only", "good", "--out", str(out)])
    assert "## Broken one" in out.read_text(encoding="utf-8")
    assert bench.main(["--only", "good", "--out", str(tmp_path / "good.md")]) == 0
    assert "Broken one" not in (tmp_path / "good.md").read_text(encoding="utf-8")
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


def _two_sections(monkeypatch: pytest.MonkeyPatch, figures: dict[str, str]) -> None:
    monkeypatch.setattr(
        bench,
        "SECTIONS",
        [
            bench.Section("alpha", "Alpha", lambda quick: figures["alpha"]),
            bench.Section("beta", "Beta", lambda quick: figures["beta"]),
        ],
    )


NOTES_ALPHA = "<!-- notes:alpha -->\n### Notes\n\nTried and not kept: X (0.41 -> 0.43).\n<!-- /notes:alpha -->"
NOTES_BETA = "<!-- notes:beta -->\nbeta history\n<!-- /notes:beta -->"


def test_a_full_run_carries_each_sections_notes_over_and_refreshes_its_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "bench.md"
    out.write_text(
        "# Benchmarks\n\nold head\n\n## Alpha\n\n| old | 1 |\n\n"
        + NOTES_ALPHA
        + "\n\n## Beta\n\n| old | 2 |\n\n"
        + NOTES_BETA,
        encoding="utf-8",
    )
    _two_sections(monkeypatch, {"alpha": "| new | 10 |\n", "beta": "| new | 20 |\n"})
    assert bench.main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| old |" not in text and "old head" not in text
    assert "| new | 10 |" in text and "| new | 20 |" in text
    assert bench.kept_notes(text) == {"alpha": NOTES_ALPHA, "beta": NOTES_BETA}
    # each block stays with its own section, after the figures
    alpha, beta = text.index("## Alpha"), text.index("## Beta")
    assert alpha < text.index("| new | 10 |") < text.index(NOTES_ALPHA) < beta < text.index(NOTES_BETA)


def test_update_replaces_only_the_sections_run_and_keeps_the_rest_verbatim(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "bench.md"
    beta_old = "## Beta\n\n_run at abc123_\n\n| old | 2 |\n\n" + NOTES_BETA + "\n"
    out.write_text(
        "# Benchmarks\n\nhead kept\n\n## Alpha\n\n| old | 1 |\n\n" + NOTES_ALPHA + "\n\n" + beta_old, encoding="utf-8"
    )
    _two_sections(monkeypatch, {"alpha": "| new | 10 |\n", "beta": "| must not run |\n"})
    assert bench.main(["--only", "alpha", "--update", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nhead kept\n\n")
    assert "| new | 10 |" in text and "| old | 1 |" not in text
    assert "--only alpha --update" in text  # the re-run section says where it comes from
    assert beta_old in text and "must not run" not in text
    assert bench.kept_notes(text) == {"alpha": NOTES_ALPHA, "beta": NOTES_BETA}

    with pytest.raises(SystemExit):  # --update without --only: a full run rewrites every section anyway
        bench.main(["--update", "--out", str(out)])


def test_notes_of_a_section_no_longer_run_are_kept_at_the_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    gone = NOTES_BETA.replace("beta", "gone")  # notes of a section since removed from SECTIONS
    out.write_text("## Alpha\n\n" + gone + "\n\n| a |\n\n" + NOTES_ALPHA + "\n")
    _two_sections(monkeypatch, {"alpha": "| a |\n", "beta": "| b |\n"})
    assert bench.main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert f"## {bench.ORPHAN_NOTES}" in text and "gone history" in text
    assert set(bench.kept_notes(text)) == {"alpha", "gone"}
    # and an update later rebuilds that tail instead of copying it twice
    assert bench.main(["--only", "beta", "--update", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("gone history") == 1 and text.count(bench.ORPHAN_NOTES) == 1
    assert set(bench.kept_notes(text)) == {"alpha", "gone"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- notes:a -->\nnever closed", "never closed"),
        ("<!-- /notes:a -->", "not opened"),
        ("<!-- notes:a -->\n<!-- notes:b -->\n<!-- /notes:b -->\n<!-- /notes:a -->", "not closed before"),
        ("<!-- notes:a -->x<!-- /notes:a -->\n<!-- notes:a -->y<!-- /notes:a -->", "twice"),
    ],
)
def test_a_broken_notes_block_stops_the_run_before_it_measures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, problem: str, capsys
) -> None:
    with pytest.raises(bench.NotesError, match=problem):
        bench.kept_notes(text)
    out = tmp_path / "bench.md"
    out.write_text(text, encoding="utf-8")
    ran: list[bool] = []
    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("a", "A", lambda quick: ran.append(quick) or "x")])
    with pytest.raises(SystemExit):
        bench.main(["--out", str(out)])
    assert ran == [] and out.read_text(encoding="utf-8") == text
    assert problem in capsys.readouterr().err


def test_notes_edited_while_the_sections_run_are_the_ones_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| old |\n\n" + NOTES_ALPHA + "\n", encoding="utf-8")
    edited = NOTES_ALPHA.replace("Tried and not kept", "Tried again, still not kept")

    def alpha(quick: bool) -> str:  # someone edits the notes during a two-hour run
        out.write_text(out.read_text(encoding="utf-8").replace(NOTES_ALPHA, edited), encoding="utf-8")
        return "| new |\n"

    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("alpha", "Alpha", alpha)])
    assert bench.main(["--out", str(out)]) == 0
    assert bench.kept_notes(out.read_text(encoding="utf-8")) == {"alpha": edited}

    def breaks(quick: bool) -> str:  # ... and leaves a block broken: their file is left as it is
        out.write_text("<!-- notes:alpha -->\nhalf-written", encoding="utf-8")
        return "| newer |\n"

    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("alpha", "Alpha", breaks)])
    assert bench.main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == "<!-- notes:alpha -->\nhalf-written"
    written = (tmp_path / "bench.md.new").read_text(encoding="utf-8")
    assert "| newer |" in written and bench.kept_notes(written) == {"alpha": edited}
    assert "bench.md.new" in capsys.readouterr().out


def _refused_before_measuring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: str, argv: list[str]) -> None:
    """Run main(argv) over a file holding ``layout`` with sections Alpha and Beta: it must exit
    before running either and leave the file as it was."""
    out = tmp_path / "bench.md"
    out.write_text(layout, encoding="utf-8")
    ran: list[bool] = []
    monkeypatch.setattr(
        bench,
        "SECTIONS",
        [
            bench.Section("alpha", "Alpha", lambda quick: ran.append(quick) or "| new a |\n"),
            bench.Section("beta", "Beta", lambda quick: ran.append(quick) or "| new b |\n"),
        ],
    )
    with pytest.raises(SystemExit):
        bench.main([*argv, "--out", str(out)])
    assert ran == [] and out.read_text(encoding="utf-8") == layout


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        # alpha's notes pasted at the end of Beta: replacing Alpha would then write them twice
        (
            "## Alpha\n\n| a |\n\n## Beta\n\n| b |\n\n" + NOTES_BETA + "\n\n" + NOTES_ALPHA + "\n",
            "sits in section 'Beta'",
        ),
        ("# Benchmarks\n\n" + NOTES_ALPHA + "\n\n## Alpha\n\n| a |\n\n## Beta\n\n| b |\n", "the file's head"),
        # a hand-written appendix after the last section would go with its old figures
        ("## Alpha\n\n| a |\n\n## Beta\n\n| b |\n\n## Appendix\n\nmy analysis\n", "'Appendix'"),
        # a marker written without its spaces would not be recognised, so its text would be lost
        ("## Alpha\n\n| a |\n\n## Beta\n\n| b |\n\n<!--notes:beta-->\nx\n<!--/notes:beta-->\n", "not written as"),
    ],
)
def test_update_refuses_before_measuring_when_hand_written_text_would_be_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: str, problem: str, capsys
) -> None:
    _refused_before_measuring(monkeypatch, tmp_path, layout, ["--only", "alpha,beta", "--update"])
    assert problem in capsys.readouterr().err


def test_update_keeps_the_last_good_figures_of_a_section_that_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| good 1 |\n\n" + NOTES_ALPHA + "\n", encoding="utf-8")

    def broken(quick: bool) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("alpha", "Alpha", broken)])
    assert bench.main(["--only", "alpha", "--update", "--out", str(out)]) == 1
    text = out.read_text(encoding="utf-8")
    assert "| good 1 |" in text and "boom" not in text and bench.kept_notes(text) == {"alpha": NOTES_ALPHA}


def test_heading_lines_in_code_blocks_and_in_a_body_do_not_split_sections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    quoted = "<!-- notes:alpha -->\nThe old layout was:\n```\n## Beta\n```\n<!-- /notes:alpha -->"
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| a |\n\n" + quoted + "\n\n## Beta\n\n| b |\n\n" + NOTES_BETA + "\n", encoding="utf-8")
    # a helper's Markdown that starts with its own ## title (bench_policy's does)
    _two_sections(monkeypatch, {"alpha": "| new a |\n", "beta": "## Policy replay benchmark\n\n| new b |\n"})
    assert bench.main(["--only", "beta", "--update", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert bench.kept_notes(text) == {"alpha": quoted, "beta": NOTES_BETA}
    assert "\n### Policy replay benchmark\n" in text and "| new b |" in text and "| a |" in text
    assert bench.main(["--only", "beta", "--update", "--out", str(out)]) == 0  # and again: nothing doubles
    assert out.read_text(encoding="utf-8").count("| new b |") == 1


def test_a_file_emptied_during_the_run_is_not_written_over(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| old |\n\n" + NOTES_ALPHA + "\n", encoding="utf-8")

    def alpha(quick: bool) -> str:  # an editor truncates the file before saving it
        out.write_text("", encoding="utf-8")
        return "| new |\n"

    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("alpha", "Alpha", alpha)])
    assert bench.main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == ""
    written = (tmp_path / "bench.md.new").read_text(encoding="utf-8")
    assert "| new |" in written and bench.kept_notes(written) == {"alpha": NOTES_ALPHA}


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ("## Alpha\n\n| a |\n\n## Beta\n\n| b |\n\n## Appendix\n\nmy analysis\n", "'Appendix'"),
        (
            "## Alpha\n\n| a |\n\n" + NOTES_ALPHA + "\n\nUpdate 12-05: reran\n\n## Beta\n\n| b |\n",
            "after its notes block",
        ),
        ("## Alpha\n\n| a |\n\n## " + bench.ORPHAN_NOTES + "\n\nmy prose\n", "outside a notes block"),
        ("## Alpha\n\n| a |\n\n<!-- notes:alpha -->\n```\n## Beta\n<!-- /notes:alpha -->\n", "does not close"),
    ],
)
def test_a_full_run_refuses_before_measuring_when_hand_written_text_would_be_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: str, problem: str, capsys
) -> None:
    _refused_before_measuring(monkeypatch, tmp_path, layout, [])
    assert problem in capsys.readouterr().err


def test_whatever_fails_after_measuring_the_figures_are_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| old a |\n\n" + NOTES_ALPHA + "\n\n## Beta\n\n| old b |\n", encoding="utf-8")
    # a generated body that looks like a notes marker cannot be assembled into the file
    _two_sections(monkeypatch, {"alpha": "| new a |\n<!-- notes: see below -->\n", "beta": "| new b |\n"})
    assert bench.main(["--out", str(out)]) == 1
    assert "| old a |" in out.read_text(encoding="utf-8")  # left alone
    written = (tmp_path / "bench.md.new").read_text(encoding="utf-8")
    assert "| new a |" in written and "| new b |" in written and NOTES_ALPHA in written

    def garbles(quick: bool) -> str:  # the file is rewritten as something that is not UTF-8
        out.write_bytes(b"\xff\xfe broken")
        return "| newer a |\n"

    monkeypatch.setattr(bench, "SECTIONS", [bench.Section("alpha", "Alpha", garbles)])
    (tmp_path / "bench.md").write_text("## Alpha\n\n| old a |\n\n" + NOTES_ALPHA + "\n", encoding="utf-8")
    assert bench.main(["--out", str(out)]) == 0
    assert out.read_bytes() == b"\xff\xfe broken"
    assert "| newer a |" in (tmp_path / "bench.md.new").read_text(encoding="utf-8")


def test_a_full_run_keeps_the_last_good_figures_of_a_section_that_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "bench.md"
    out.write_text("## Alpha\n\n| old a |\n\n## Beta\n\n| good b |\n\n" + NOTES_BETA + "\n", encoding="utf-8")

    def broken(quick: bool) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(
        bench,
        "SECTIONS",
        [bench.Section("alpha", "Alpha", lambda q: "| new a |\n"), bench.Section("beta", "Beta", broken)],
    )
    assert bench.main(["--out", str(out)]) == 1
    text = out.read_text(encoding="utf-8")
    assert "| new a |" in text and "| good b |" in text and "boom" not in text
    assert bench.kept_notes(text) == {"beta": NOTES_BETA}
