"""Shared fixtures. Test data is made by code or read from ../shared/data; nothing downloads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real third-party data (``<repo>/../shared/data``); see its MANIFEST.md."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing: tests need the real files there")
    return SHARED_DATA


@pytest.fixture(scope="session")
def open_in_chromium():
    """A function that opens an HTML file in headless Debian Chromium (see :func:`_open_in_chromium`)."""
    return _open_in_chromium


def _pixel_spread(png: bytes) -> float:
    """Standard deviation of a screenshot's grey values (0 for a blank picture)."""
    import io

    import numpy as np
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def _open_in_chromium(path: Path, *, width: int = 1280, screenshots: bool = False) -> dict:
    """Open an HTML file in headless Debian Chromium at ``width`` px.

    Returns console errors, images (complete, natural width, height), section titles, figure
    captions, the page's scroll width (horizontal overflow when above ``width``) and, with
    ``screenshots``, per section ``(title, width_px, height_px, pixel spread)`` and the pixel spread
    of every figure's screenshot.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is needed: 'make test' installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(Path(path).resolve().as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
        sections = page.eval_on_selector_all("section h2", "els => els.map(e => e.textContent)")
        captions = page.eval_on_selector_all("figcaption", "els => els.map(e => e.textContent)")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        shots, figure_spread = [], []
        if screenshots:
            for el in page.query_selector_all("section"):
                box = el.bounding_box()
                title = el.query_selector("h2").text_content()
                shots.append((title, box["width"], box["height"], _pixel_spread(el.screenshot())))
            figure_spread = [_pixel_spread(el.screenshot()) for el in page.query_selector_all("figure img")]
        browser.close()
    return {"errors": errors, "images": images, "sections": sections, "captions": captions,
            "scroll_width": scroll_width, "section_shots": shots, "figure_spread": figure_spread}
