"""The page a person reads (``index.html`` of ``jaxplain explain`` and the demo), opened in headless Chromium at
1400 px: each input once per row, one overlay per method, one shared colour bar, nothing wider than the screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxplain.explain_files import explain_files
from jaxplain.images import save_png
from tests.conftest import make_tiny_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREEN = 1400
METHODS = ["gradient", "gradcam", "occlusion", "smoothgrad", "random", "centre"]


def open_page(page_path: Path, screenshot: Path) -> dict:
    """Loads the page at a 1400-px-wide window and reads its layout from the browser."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": SCREEN, "height": 900})
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            layout = page.evaluate("""() => ({
                width: document.documentElement.scrollWidth,
                bars: document.querySelectorAll('.bar').length,
                header: [...document.querySelectorAll('table tr:first-child th')].map(th => th.textContent),
                rows: [...document.querySelectorAll('table tr')].slice(1).map(tr => [...tr.children].map(td =>
                    [...td.querySelectorAll('img')].map(img => ({src: img.getAttribute('src'),
                        loaded: img.complete && img.naturalWidth > 0, right: img.getBoundingClientRect().right})))),
            })""")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return layout


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_fits_a_1400px_screen_with_each_input_once_and_one_colour_bar(tmp_path, photos):
    inputs = []
    for i, photo in enumerate(np.concatenate([photos, photos[:, ::-1]])):  # four real photos
        inputs.append(tmp_path / f"photo {i}.png")
        save_png(inputs[-1], np.round(photo * 255).astype(np.uint8))
    out = tmp_path / "page"
    explain_files(make_tiny_model(size=64), METHODS, inputs, out, batch_size=4)  # the page, not the teacher, is tested

    layout = open_page(out / "index.html", tmp_path / "page.png")

    assert layout["width"] <= SCREEN
    assert layout["bars"] == 1
    assert layout["header"] == ["input", *METHODS]
    assert len(layout["rows"]) == len(inputs)
    for row in layout["rows"]:
        shown, *overlays = row
        assert len(shown) == 1 and shown[0]["src"].startswith("overlays/inputs/")  # the input, once
        assert [len(cell) for cell in overlays] == [1] * len(METHODS)  # one overlay per method
        pictures = [picture for cell in row for picture in cell]
        assert all(p["loaded"] for p in pictures) and max(p["right"] for p in pictures) <= SCREEN
    assert (tmp_path / "page.png").stat().st_size > 0
