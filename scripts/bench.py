"""Run every benchmark section, print it, and write docs/benchmarks.md (``make bench``).

Usage: PYTHONPATH=. .venv/bin/python scripts/bench.py [--quick] [--only parse,validation [--update]] [--out FILE]
(``make bench`` / ``make bench QUICK=1``). A full run takes about two hours on 2 cores (an hour of it
the 52-week backfill), --quick about 20 minutes. ``--only KEYS --update`` re-runs those sections and
replaces them in docs/benchmarks.md (or ``--out``), keeping every other section as it is.

Hand-written analysis lives in each section's notes block, ``<!-- notes:KEY -->`` ...
``<!-- /notes:KEY -->``: a run regenerates the figures and carries the block over unchanged from
the file it writes, so the measured history of a section is never lost to a rerun. Before
measuring, the run refuses a file whose hand-written text it could not keep (a block broken,
misplaced, written with other spacing or leaving a code block open; an unknown ``## `` heading
or text after the notes in a section it would replace; ``--only`` without ``--update`` into a
file holding other sections). The file is read again when the sections have run, so notes
edited meanwhile are the ones kept; a file broken or emptied meanwhile is left alone, and
whatever fails after measuring, the figures go to ``<file>.new``. A section that fails keeps
its previous figures.

Each section is a function ``(quick: bool) -> str`` registered in :data:`SECTIONS`: it prints
its figures as it measures them and returns Markdown. Sections that depend on modules other
helpers provide import them lazily and say "not available" when they are missing. Ratios are
measured side by side in one run on this machine; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Packages whose versions are printed with the machine description.
KEY_PACKAGES = (
    "apache-airflow",
    "great-expectations",
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "pydantic",
    "PyYAML",
    "mlflow",
)


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    run: Callable[[bool], str]


# -- sections -----------------------------------------------------------------------


def section_parse(quick: bool) -> str:
    from benchmarks import bench_parse

    return bench_parse.run_section(quick)


def section_validation(quick: bool) -> str:
    from benchmarks import bench_validation

    return bench_validation.run_section(quick)


def section_drift(quick: bool) -> str:
    from benchmarks import bench_drift

    return bench_drift.run_section(quick)


def section_overhead(quick: bool) -> str:
    from benchmarks import bench_overhead

    return bench_overhead.run_section(quick)


def section_backfill(quick: bool) -> str:
    from benchmarks import bench_backfill

    return bench_backfill.run_section(quick)


def _external_section(module_name: str, title: str, quick: bool) -> str:
    """A section another helper provides as ``scripts/<module>.py`` with ``run(quick) -> dict``.

    Markdown comes from the module's ``markdown(result)`` if it has one, else from a
    ``"markdown"`` entry of the result, else the figures are shown as JSON.
    """
    try:
        module = importlib.import_module(f"scripts.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"scripts.{module_name}", "scripts"):
            raise
        line = f"not available (scripts/{module_name}.py is not in this checkout)"
        print(f"  {line}")
        return f"_{line}_\n"
    result = module.run(quick)
    if hasattr(module, "markdown"):
        text = module.markdown(result)
    elif isinstance(result, dict) and isinstance(result.get("markdown"), str):
        text = result["markdown"]
    else:
        text = "```json\n" + json.dumps(result, indent=2, default=str) + "\n```\n"
    print(text)
    return text


def section_gate(quick: bool) -> str:
    return _external_section("bench_gate", "Drift gate calibration", quick)


def section_policy(quick: bool) -> str:
    return _external_section("bench_policy", "Retrain/promote policy replay", quick)


#: Every section, in the order they run and appear in docs/benchmarks.md.
SECTIONS: list[Section] = [
    Section("parse", "DAG parsing at fleet size", section_parse),
    Section("validation", "Validation step (Great Expectations)", section_validation),
    Section("drift", "Drift statistics vs a per-column scipy loop", section_drift),
    Section("gate", "Drift gate calibration (false alarms, power)", section_gate),
    Section("policy", "Retrain/promote policy replay", section_policy),
    Section("overhead", "Per-task overhead", section_overhead),
    Section("backfill", "A 52-week backfill (scale with the weeks)", section_backfill),
]


# -- machine description ------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_markdown(started_load: str, finished_load: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram = _ram_gib()
    versions = []
    for name in KEY_PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    rows = [
        ("CPU", _cpu_model()),
        ("Cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("RAM", f"{ram:.1f} GiB" if ram else "n/a"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Packages", ", ".join(versions)),
        ("Load average (1/5/15 min)", f"at start {started_load}; at end {finished_load}"),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"


# -- the document: generated figures + hand-written notes ----------------------------


class NotesError(ValueError):
    """docs/benchmarks.md has a notes block that cannot be carried over safely."""


_NOTES_MARK = re.compile(r"<!-- (/?)notes:([a-z0-9_]+) -->")
#: Anything that looks like a notes marker; one that is not exactly a marker would be lost silently.
_NOTES_LIKE = re.compile(r"<!--\s*/?\s*notes\b[^>]*-->", flags=re.I)


def _headings(text: str) -> list[tuple[int, str]]:
    """``(offset, title)`` of each ``## `` heading line outside fenced code blocks."""
    found, offset, fenced = [], 0, False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            found.append((offset, line[3:].strip()))
        offset += len(line)
    return found


def kept_notes(text: str) -> dict[str, str]:
    """Each section's hand-written notes block in ``text``, markers included, by section key.

    Raises :class:`NotesError` for a block that is unclosed, closed without being opened,
    nested or given twice, and for a marker not written exactly ``<!-- notes:KEY -->``:
    writing the file then would drop or garble hand-written text.
    """
    bad = [m.group(0) for m in _NOTES_LIKE.finditer(text) if not _NOTES_MARK.fullmatch(m.group(0))]
    if bad:
        raise NotesError(f"notes marker(s) not written as <!-- notes:KEY --> / <!-- /notes:KEY -->: {bad}")
    notes: dict[str, str] = {}
    open_key, open_at = None, 0
    for m in _NOTES_MARK.finditer(text):
        closing, key = m.group(1) == "/", m.group(2)
        if not closing:
            if open_key is not None:
                raise NotesError(f"notes block {open_key!r} is not closed before notes block {key!r} opens")
            open_key, open_at = key, m.start()
        else:
            if open_key != key:
                raise NotesError(f"notes block {key!r} is closed but was not opened (open: {open_key!r})")
            if key in notes:
                raise NotesError(f"notes block {key!r} appears twice")
            notes[key] = text[open_at : m.end()]
            open_key = None
    if open_key is not None:
        raise NotesError(f"notes block {open_key!r} is never closed (<!-- /notes:{open_key} -->)")
    return notes


def split_sections(text: str, titles: list[str]) -> tuple[str, dict[str, str]]:
    """``text`` split at the ``## <title>`` lines of the known section titles: (head, {title: section}).

    A section runs to the next known title; ``## `` lines inside fenced code do not count, and
    an unknown ``## `` line stays inside the section before it (:func:`check_layout` refuses to
    replace such a section). ``head`` is everything before the first known section (title,
    provenance and the machine table).
    """
    marks = [(at, title) for at, title in _headings(text) if title in titles]
    if not marks:
        return text, {}
    sections = {}
    for i, (at, title) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        sections[title] = text[at:end].rstrip() + "\n"
    return text[: marks[0][0]], sections


def _outside_notes(text: str) -> str:
    for block in kept_notes(text).values():
        text = text.replace(block, "")
    return text


#: Where notes go whose section the file no longer holds (not run this time, or removed).
ORPHAN_NOTES = "Notes of sections not in this file"


def check_layout(text: str, sections: list[Section], replaced: set[str]) -> None:
    """Raise :class:`NotesError` when writing over ``text`` would drop or misplace hand-written text.

    Every notes block must parse, close the code blocks it opens, and sit in the section it is
    named for (or in the tail of notes whose section is gone, :data:`ORPHAN_NOTES`, which must
    hold nothing else: it is rebuilt). A section about to be replaced (``replaced``: section
    keys) must hold no unknown ``## `` heading outside its notes (a hand-written appendix would
    go with the old figures) and nothing after its notes block (generated text never follows
    it). Run before measuring anything, and again before writing.
    """
    notes = kept_notes(text)
    by_key = {s.key: s.title for s in sections}
    _, parts = split_sections(text, [*(s.title for s in sections), ORPHAN_NOTES])
    problems = []
    for key, block in notes.items():
        if sum(1 for line in block.splitlines() if line.lstrip().startswith("```")) % 2:
            problems.append(f"notes block {key!r} opens a code block (```) it does not close")
        if key not in by_key:  # its section is gone: wherever it sits, assemble() keeps it in the tail
            continue
        home = next((title for title, part in parts.items() if block in part), None)
        if home is None or home not in (by_key[key], ORPHAN_NOTES):
            where = f"section {home!r}" if home else "the file's head"
            problems.append(f"notes block {key!r} sits in {where}, not in its section {by_key[key]!r}")
    tail = parts.get(ORPHAN_NOTES)
    if tail is not None and _outside_notes(tail).replace(f"## {ORPHAN_NOTES}", "", 1).strip():
        problems.append(
            f"text under '## {ORPHAN_NOTES}' outside a notes block (that tail is rebuilt): move it into one"
        )
    for key in sorted(replaced):
        title = by_key.get(key, "")
        part = parts.get(title, "")
        extra = [t for _, t in _headings(_outside_notes(part))[1:]]
        if extra:
            problems.append(
                f"section {title!r} holds heading(s) {extra} outside its notes block: move that text "
                f"into its notes block (notes:{key}) or it would be replaced"
            )
        block = notes.get(key)
        if block and block in part and part[part.index(block) + len(block) :].strip():
            problems.append(f"section {title!r} has text after its notes block: move it into the block")
    if problems:
        raise NotesError("; ".join(problems))


def render_section(title: str, body: str, seconds: float, notes: str | None, provenance: str = "") -> str:
    """One section: its generated body, its wall time, then its hand-written notes (if any).

    A body's own ``## `` headings (a helper that also writes a file of its own starts with
    one) become ``### ``: only section titles are ``## `` here, which is how the file splits.
    """
    body = body.rstrip()
    for at, _ in reversed(_headings(body)):
        body = body[:at] + "#" + body[at:]
    text = f"## {title}\n\n{provenance}{body}\n\n_Section wall time: {seconds:.0f} s._\n"
    if notes:
        text += f"\n{notes.strip()}\n"
    return text


def assemble(head: str, sections: list[str], notes: dict[str, str]) -> str:
    """The file: ``head``, the sections, then every notes block of ``notes`` they do not hold.

    Nothing hand-written is dropped: a block whose section was not written (``--only`` into a
    new file, or a section since removed) goes under :data:`ORPHAN_NOTES` at the end.
    """
    doc = head + "\n".join(sections)
    lost = [k for k in notes if k not in kept_notes(doc)]
    if lost:
        doc = doc.rstrip() + f"\n\n## {ORPHAN_NOTES}\n\n" + "\n\n".join(notes[k] for k in lost) + "\n"
    return doc


# -- driver -------------------------------------------------------------------------


def _document(
    args: argparse.Namespace,
    wanted: set[str],
    out: Path | None,
    existing: str,
    notes: dict[str, str],
    generated: list[tuple[Section, str, float, str]],
    failed: list[str],
    total: float,
    started_load: str,
) -> tuple[Path | None, str]:
    """The file to write and its text, once the sections have run (see :func:`main`)."""
    if out is not None and existing:
        # Read again: notes edited while the sections ran (a full run takes two hours) are kept.
        # Broken, emptied or gone meanwhile (an editor mid-save): keep the figures, leave that file alone.
        try:
            now = out.read_text(encoding="utf-8") if out.exists() else ""
            if not now.strip():
                raise NotesError("the file is empty or gone")
            check_layout(now, SECTIONS, wanted or {s.key for s in SECTIONS})
            notes, existing = kept_notes(now), now
        except (NotesError, OSError, UnicodeDecodeError) as exc:
            out = out.with_name(out.name + ".new")
            print(f"{out.name[:-4]} changed during the run and cannot be written over ({exc}); writing {out} instead")
    rendered = {
        section.title: render_section(section.title, body, seconds, notes.get(section.key), provenance)
        for section, body, seconds, provenance in generated
    }
    # The orphan notes' heading splits too, so that they do not stick to the last section;
    # assemble() rebuilds that tail from what is still not placed.
    head, old = split_sections(existing, [*(s.title for s in SECTIONS), ORPHAN_NOTES]) if existing else ("", {})
    for section in SECTIONS:
        if section.key in failed and section.title in old:  # keep the last good figures
            print(f"section {section.key} failed: its previous figures are kept")
            rendered[section.title] = old[section.title]
    if args.update and existing:
        sections = [rendered.get(s.title) or old[s.title] for s in SECTIONS if s.title in rendered or s.title in old]
    else:
        if args.quick:
            mode = "quick (`make bench QUICK=1`)"
        elif wanted:
            mode = f"partial (`scripts/bench.py --only {','.join(sorted(wanted))}`)"
        else:
            mode = "full (`make bench`)"
        head = (
            "# Benchmarks\n\n"
            f"Written by `scripts/bench.py` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {mode} run, "
            f"{total / 60:.1f} min. Figures are wall-clock times on the machine below, measured side by side in "
            "one run; on a shared machine the load average matters, so it is recorded. Regenerate with `make bench` "
            "(one section: `scripts/bench.py --only KEY --update`). Each section's hand-written notes "
            "(its `notes:KEY` comment block) are carried over from the previous file; their figures are from the runs "
            "they name.\n\n"
            "## Machine\n\n" + machine_markdown(started_load, _load()) + "\n"
        )
        sections = list(rendered.values())
    return out, assemble(head, sections, notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (a few minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated keys among {[s.key for s in SECTIONS]}")
    parser.add_argument(
        "--out",
        default=None,
        help="Markdown file to write (default docs/benchmarks.md; with --only, nothing unless given)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="with --only: replace those sections in the file written (default docs/benchmarks.md), keep the rest",
    )
    args = parser.parse_args(argv)
    wanted = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = wanted - {s.key for s in SECTIONS}
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; known: {[s.key for s in SECTIONS]}")
    if args.update and not wanted:
        parser.error("--update needs --only (a full run rewrites every section anyway)")
    # A partial run (--only) must not replace the full report unless asked to.
    default_out = ROOT / "docs" / "benchmarks.md"
    out = Path(args.out) if args.out else (default_out if (args.update or not wanted) else None)
    existing = out.read_text(encoding="utf-8") if out is not None and out.exists() else ""
    try:  # before measuring anything: a broken notes block must not cost a two-hour run
        notes = kept_notes(existing)
        check_layout(existing, SECTIONS, wanted or {s.key for s in SECTIONS})
    except NotesError as exc:
        parser.error(f"{out}: {exc}")
    if existing and wanted and not args.update:
        run = {s.title for s in SECTIONS if s.key in wanted}
        dropped = [t for t in split_sections(existing, [s.title for s in SECTIONS])[1] if t not in run]
        if dropped:
            parser.error(
                f"{out} holds sections this run would drop ({', '.join(dropped)}): add --update to replace only "
                "the sections run, or write to another file"
            )

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    started = time.perf_counter()
    started_load = _load()
    generated: list[tuple[Section, str, float, str]] = []
    failed: list[str] = []
    for section in SECTIONS:
        if wanted and section.key not in wanted:
            continue
        print(f"\n=== {section.title} ===", flush=True)
        t0 = time.perf_counter()
        try:
            body = section.run(args.quick)
        except Exception:  # one broken section must not lose the others' figures
            failed.append(section.key)
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            body = f"_section failed:_\n\n```\n{tb.strip().splitlines()[-1]}\n```\n"
        seconds = time.perf_counter() - t0
        print(f"--- {section.title}: {seconds:.0f} s", flush=True)
        provenance = ""
        if args.update:  # the rest of the file comes from other runs: say where this one comes from
            provenance = (
                f"_This section was re-run on its own: `scripts/bench.py --only {section.key} --update"
                f"{' --quick' if args.quick else ''}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
                f"{_cpu_model()}, load average {_load()} at its end; "
                "the machine table at the top is that of the run named there._\n\n"
            )
        generated.append((section, body, seconds, provenance))

    total = time.perf_counter() - started
    # Nothing after this point may lose the figures just measured (a full run takes two hours):
    # whatever goes wrong, they are written to <file>.new.
    try:
        out, doc = _document(args, wanted, out, existing, notes, generated, failed, total, started_load)
    except Exception:
        traceback.print_exc()
        fallback = (out or default_out).with_name((out or default_out).name + ".new")
        fallback.write_text(
            "\n".join(render_section(s.title, body, sec, notes.get(s.key), prov) for s, body, sec, prov in generated),
            encoding="utf-8",
        )
        print(f"\nthe file could not be assembled (above); the figures are in {fallback}")
        return 1
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(doc, encoding="utf-8")
    where = f"wrote {out}" if out is not None else "no file written (--only without --out)"
    print(f"\n{where} ({total / 60:.1f} min)" + (f"; FAILED sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
