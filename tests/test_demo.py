"""`layerscope demo` end to end: every section present, the report renders in Chromium."""

import json
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
    page = open_in_chromium(out / "report.html")
    assert page["errors"] == []
    # an overview, one section per demo step, and the provenance
    assert len(page["sections"]) == len(DEMO_STEPS) + 2
    assert page["sections"][0] == "Overview" and page["sections"][-1] == "Provenance"
    assert len(page["images"]) >= len(DEMO_STEPS)
    assert all(complete and width > 50 for complete, width, _ in page["images"])
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["parameters"]["seed"] == 0 and provenance["layerscope_version"]
    for folder, _ in DEMO_STEPS:
        assert (out / folder).is_dir()
    assert not list(tmp_path.glob(".demo-output.partial-*"))
