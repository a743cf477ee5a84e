"""`layerscope demo` end to end: every section present, the report renders in Chromium."""

import json
import re
import subprocess
import sys

from layerscope.demo import DEMO_STEPS


def test_demo_writes_a_complete_report_that_renders(tmp_path, open_in_chromium):
    out = tmp_path / "demo-output"
    run = subprocess.run(
        [sys.executable, "-m", "layerscope", "demo", "--out", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"report written to {out / 'report.html'}" in run.stdout
    page = open_in_chromium(out / "report.html", width=1280, screenshots=True)
    assert page["errors"] == []
    assert page["scroll_width"] <= 1280  # no horizontal page overflow at 1280 px
    # every figure numbered in order and captioned, and written as PNG and SVG beside the report
    assert len(page["captions"]) == len(page["images"])
    for n, caption in enumerate(page["captions"], start=1):
        assert caption.startswith(f"Figure {n}. ") and len(caption) > 40, caption
        assert (out / "figures" / f"figure-{n}.png").is_file() and (out / "figures" / f"figure-{n}.svg").is_file()
    # a screenshot of each section: a readable size and not blank; no figure blank
    for title, w, h, spread in page["section_shots"]:
        assert 800 <= w <= 1280 and h >= 80 and spread > 5, (title, w, h, spread)
    assert min(page["figure_spread"]) > 5
    html = (out / "report.html").read_text()
    assert ".partial-" not in html  # no temporary paths
    assert not re.search(r"[>\s(]nan[<\s)]", html, flags=re.IGNORECASE)  # no NaN shown
    assert "Run times:" in html and "layerscope demo --out" in html  # timings in the footer; the command
    # an overview, one section per demo step, and the provenance
    assert len(page["sections"]) == len(DEMO_STEPS) + 2
    assert page["sections"][0] == "Overview" and page["sections"][-1] == "Provenance"
    assert len(page["images"]) >= len(DEMO_STEPS)
    assert all(complete and width > 50 for complete, width, _ in page["images"])
    provenance = json.loads((out / "provenance.json").read_text())
    assert ".partial-" not in json.dumps(provenance)
    assert provenance["parameters"]["seed"] == 0 and provenance["layerscope_version"]
    for folder, _ in DEMO_STEPS:
        assert (out / folder).is_dir()
    assert not list(tmp_path.glob(".demo-output.partial-*"))
