"""Real atomic-resolution images (../shared/data/stem): ``layerscope columns`` on each.

``phases`` refusing every one of them is tested in tests/imaging/test_columns_real.py. The checks
(tests/imaging/imaging_real.py) are independent of layerscope: the detected count against the
lattice of the image's own power spectrum over the area where the lattice is seen (12 %), and the
columns on the maxima of the smoothed image (median 0.05, 90 % within 0.15 nearest distances).
PNG files carry no calibration: the MANIFEST's field width / pixels is passed; the Au grain
boundary and the nanoparticle patches have no scale at all and run at a nominal 0.01 nm/px (the
finder's scale comes from the image, so only the nm values depend on it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from corpus import Row
from imaging_real import IMAGES, check_columns, read_image

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
WITH_FIGURES = "stem/atomsegnet/Si110_5nmX25us_03_none_none.png"


def _check(rel: str, px: float | None):
    def check(out_dir: Path, stdout: str) -> None:
        import json

        table = pd.read_csv(out_dir / "columns.csv")
        summary = json.loads((out_dir / "summary.json").read_text())
        pixel = px if px is not None else summary["image"]["pixel_size_nm"]
        assert f"{len(table)} columns found" in stdout
        check_columns(read_image(SHARED / rel), table, pixel, rel)
        if (out_dir / "report.html").exists():  # the row run with figures: the report states the same counts
            html = (out_dir / "report.html").read_text()
            assert f"<b>{len(table)}</b><span>columns detected" in html
            assert f"<b>{int(table['at_border'].sum())}</b><span>columns cut by the image edge" in html
            assert (out_dir / "overlay.png").stat().st_size > 10_000

    return check


def _row(rel: str) -> Row:
    px, nominal, _, what = IMAGES[rel]
    # one row (a small image) also writes overlay.png and report.html; the others skip the figures' time
    args = ["columns", "{file}", "--out", "{out}"] + ([] if rel == WITH_FIGURES else ["--no-figures"])
    if px is not None:
        args += ["--pixel-size-nm", f"{px:.9g}"]
    scale = "nominal 0.01 nm/px (no scale known)" if nominal else ("file calibration" if px is None else
                                                                   f"{px:.5g} nm/px from the MANIFEST")
    return Row(path=rel, args=args, expect="ok", check=_check(rel, px),
               why=f"{what}; {scale}; count vs the power spectrum's lattice (12 %), columns on maxima")


ROWS = [_row(rel) for rel in sorted(IMAGES)] + [
    Row(path="stem/atomsegnet/12028.png",
        args=["columns", "{file}", "--pixel-size-nm", "0.01", "--out", "{out}"], expect="refused",
        message=r"no lattice fringes",
        why="low-dose patch whose power spectrum has no spot 25x above the noise (strongest 7x): refused, "
            "not guessed"),
]
