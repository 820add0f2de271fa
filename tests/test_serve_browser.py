"""The web app driven in headless Chromium (Playwright with Debian's `chromium`).

Skipped when Chromium or Playwright's Python package is absent (`make browser` installs both
and runs this file). Uploads a photo and sees its reconstruction, samples a class, completes an
image, and saves a screenshot to `$TAMING_TEST_ARTIFACTS` (default `test-artifacts/`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
if not CHROMIUM:
    pytest.skip("no chromium on PATH (make browser installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from serve_helpers import png_bytes, served, uvicorn_server  # noqa: E402
from taming.serve import create_app  # noqa: E402
from test_serve import models  # noqa: E402, F401  (the tiny models fixture)

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _wait_image(page, img_id: str, status_id: str) -> None:
    page.wait_for_function(
        f"document.getElementById('{img_id}').naturalWidth > 0 || "
        f"document.getElementById('{status_id}').className.includes('error')",
        timeout=60_000,
    )
    status = page.text_content(f"#{status_id}")
    assert status.startswith("done"), status


def test_browser_reconstruct_sample_complete(models, tmp_path):  # noqa: F811
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes((48, 32), seed=4))
    artifacts = Path(os.environ.get("TAMING_TEST_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    stages, transformers = served(models)
    with uvicorn_server(create_app(stages, transformers)) as url:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 1000})
                page.goto(url)
                page.wait_for_function("document.getElementById('sample-model').options.length")
                # upload a photo and see the reconstruction and its token grid
                page.set_input_files("#recon-file", str(photo))
                page.click("#recon-go")
                _wait_image(page, "recon-img", "recon-status")
                assert page.evaluate("document.getElementById('recon-img').naturalWidth") == 16
                page.wait_for_function(
                    "document.getElementById('recon-tokens').textContent.includes('8x8 codes')"
                )
                # sample class 1 of the class-conditional model
                page.select_option("#sample-model", "class")
                assert "class" in page.text_content("#sample-kind")
                page.fill("#sample-class", "1")
                page.fill("#sample-seed", "3")
                page.click("#sample-go")
                _wait_image(page, "sample-img", "sample-status")
                # complete the lower half of the photo with the unconditional model
                page.select_option("#sample-model", "uncond")
                page.set_input_files("#complete-file", str(photo))
                page.click("#complete-go")
                _wait_image(page, "complete-img", "complete-status")
                shot = artifacts / "serve_browser.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 1000
            finally:
                browser.close()
