"""The demo page in a real browser: Debian's Chromium driven by Playwright, against the app
serving the shipped bundle."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from tests.served import shipped_service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with shipped_service() as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[tuple[Page, list[str]]]:
    assert Path(CHROMIUM).exists(), "apt-get install chromium (scripts/test.sh does)"
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.wait_for_function("() => document.querySelector('#concept').options.length > 1")
        yield page, errors
        browser.close()


def _loads(page: Page) -> int:
    return int(page.evaluate("document.body.dataset.loads || '0'"))


def _wait_render(page: Page, after: int) -> None:
    page.wait_for_function(
        "n => Number(document.body.dataset.loads || 0) > n", arg=after, timeout=60_000
    )
    page.wait_for_timeout(500)  # a few frames after the model loaded


def _viewer_variance(page: Page) -> float:
    png = page.locator("#viewer").screenshot()
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32).var())


def test_sample_renders_a_shape(page) -> None:
    p, errors = page
    blank = _viewer_variance(p)
    before = _loads(p)
    # the README's chair example (seed 0 around the concept at temperature 0.5, by the rule
    # in training/evaluate_real.example_seeds), so the screenshot shows what the README says
    p.fill("#seed", "0")
    p.select_option("#concept", "chair")
    p.fill("#temperature", "0.5")
    assert p.inner_text("#temperature-value") == "0.5"
    p.click("#sample-btn")
    _wait_render(p, before)
    assert _viewer_variance(p) > blank + 20  # the canvas is not blank any more
    assert "seed 0" in p.inner_text("#info")
    assert not p.is_disabled("#dl-glb") and not errors, errors
    if os.environ.get("GAN3D_WRITE_SCREENSHOT"):  # regenerate the README's picture
        p.screenshot(path=str(ROOT / "docs" / "web_page.png"))


def test_sample_real_looking_shapes(page) -> None:
    """The shipped prior has kernels around the real models: the page offers them."""
    p, errors = page
    p.select_option("#concept", "chair")
    assert p.is_disabled("#source")  # a concept decides the neighbourhood, not the source
    p.select_option("#concept", "")
    p.fill("#seed", "4")
    assert p.is_visible("#source") and not p.is_disabled("#source")
    p.select_option("#source", "real")
    before = _loads(p)
    p.click("#sample-btn")
    _wait_render(p, before)
    assert "seed 4" in p.inner_text("#info") and not errors, errors


def test_interpolation_slider_scrubs_frames(page) -> None:
    p, errors = page
    p.click("#interp-panel summary")
    before = _loads(p)
    p.click("#interp-btn")
    _wait_render(p, before)
    assert p.get_attribute("#interp-slider", "max") == "7"
    before = _loads(p)
    p.fill("#interp-slider", "5")
    p.dispatch_event("#interp-slider", "input")
    _wait_render(p, before)
    assert "frame 6/8" in p.inner_text("#info") and not errors, errors


def test_reconstruct_an_uploaded_image(page, tmp_path: Path) -> None:
    from training.data.shapes import make_shape
    from training.data.shapes.render import render

    p, errors = page
    rgb, _ = render(make_shape("table", 2_000_123), np.random.default_rng(1), size=64)
    path = tmp_path / "table.png"
    Image.fromarray(rgb).save(path)
    p.click("#recon-panel summary")
    before = _loads(p)
    p.set_input_files("#image", str(path))
    _wait_render(p, before)
    assert "reconstruction of table.png" in p.inner_text("#info") and not errors, errors
    assert "the model sees a" in p.inner_text("#info")  # the encoder's guess, from the headers
    assert "the object was " in p.inner_text("#info")  # how it was found (X-Gan3d-Mask)
    # the shipped bundle takes a category hint: the same photo, named a table
    p.select_option("#recon-category", "table")
    before = _loads(p)
    p.set_input_files("#image", [])
    p.set_input_files("#image", str(path))
    _wait_render(p, before)
    assert "reconstruction of table.png" in p.inner_text("#info") and not errors, errors
    # several photos of one object in one request
    rgb, _ = render(make_shape("table", 2_000_123), np.random.default_rng(2), size=64)
    other = tmp_path / "table-2.png"
    Image.fromarray(rgb).save(other)
    before = _loads(p)
    p.set_input_files("#image", [])
    p.set_input_files("#image", [str(path), str(other)])
    _wait_render(p, before)
    assert "reconstruction of 2 photos of one object" in p.inner_text("#info"), errors
    assert not errors, errors


def test_a_photo_of_nothing_it_knows_is_said_so(page, tmp_path: Path) -> None:
    p, _ = page
    sky = np.zeros((128, 128, 3), np.uint8)
    sky[..., 2] = np.linspace(255, 120, 128)[:, None]
    sky[..., 1] = np.linspace(200, 90, 128)[:, None]
    sky[64:] = (40, 140, 40)  # a sky over grass: no object at all
    path = tmp_path / "landscape.png"
    Image.fromarray(sky).save(path)
    p.eval_on_selector("#recon-panel", "e => { e.open = true; }")
    p.select_option("#recon-category", "")  # the model's guess: a hint would skip the check
    p.set_input_files("#image", [])
    p.set_input_files("#image", str(path))
    p.wait_for_selector("#error:not([hidden])")
    text = p.inner_text("#error")
    assert "Not recognised" in text and 'pick it under "It shows"' in text, text


def test_api_errors_are_shown_in_words(page) -> None:
    p, _ = page
    p.fill("#seed", "-5")
    p.click("#sample-btn")
    p.wait_for_selector("#error:not([hidden])")
    assert "seeds must be in" in p.inner_text("#error")


def test_api_docs_render_offline(page, server: str) -> None:
    """/docs is Swagger UI from the vendored copy: it renders with no request leaving the host."""
    p, _ = page
    outside: list[str] = []
    context = p.context.browser.new_context()  # the same browser (one Playwright per module)
    docs = context.new_page()
    docs.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
    errors: list[str] = []  # e.g. a script the page's Content-Security-Policy refused
    docs.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    docs.goto(server + "/docs")
    docs.wait_for_selector(".opblock", timeout=30_000)
    ops = docs.locator(".opblock").count()
    title = docs.title()
    context.close()
    assert ops >= 8 and "gan3d" in title and not errors, errors
    assert not [u for u in outside if not u.startswith("data:")], outside


def test_edit_slider_moves_the_current_shape(page) -> None:
    p, errors = page
    errors.clear()  # the module's page is shared: an earlier test provokes a 422 on purpose
    p.fill("#seed", "5")
    p.select_option("#concept", "chair")
    before = _loads(p)
    p.click("#sample-btn")
    _wait_render(p, before)
    p.click("#edit-panel summary")
    options = p.eval_on_selector_all("#edit-direction option", "os => os.map(o => o.value)")
    # the shipped bundle's directions: the sampled concept's category's and those for any
    assert "chair.tall_back" in options
    assert all(o.startswith(("chair.", "any.")) for o in options)
    p.select_option("#edit-direction", "chair.tall_back")
    p.wait_for_function("() => document.querySelector('#info').textContent.includes('edit')")
    before = _loads(p)
    p.fill("#edit-amount", "1")
    p.dispatch_event("#edit-amount", "input")
    _wait_render(p, before)
    assert "chair.tall_back 1.0" in p.inner_text("#info") and not errors, errors
