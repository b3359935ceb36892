"""The class joins in, in the real app (`streamlit run app.py --server.address 0.0.0.0`) and headless
Chromium: the presenter walks the slides by keyboard on 127.0.0.1 (no sideways scroll at 1280 x 720),
the join slide's QR code reads as the Live page's address at this machine's network address, and ten
phones (390 x 844) there each upload a photo of known breed and name it; the board then shows ten
pets and, per breed head, the accuracy a direct computation gets with the same models on the same
photos (scripts/class_run.py). The camera toggle: on localhost, not on the phones; the board's
controls: the presenter's only.

Skips where Chromium or Playwright is missing (fails in CI), where the real slice is absent, or
where this machine has no network address besides loopback.
"""
from __future__ import annotations

import asyncio
import io
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SHARED_PETS, require_browser

sys.path.insert(0, str(ROOT / "scripts"))
import class_run  # noqa: E402
import load  # noqa: E402

PHONES = 10
STORY = ["Transfer learning on Oxford-IIIT Pet", "Six runs beside the report", "Q1. Does pretraining help detection?",
         "Q2. Does pretraining help segmentation?", "Q3. One multi-task model instead of two?",
         "Which breeds? Pretrained against scratch", "Where did the breed heads look?",
         "Your turn: your pet against the six models", "The class board"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
SIDEWAYS_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def class_server(demo_store):
    """The app on 0.0.0.0 (a port of 8650-8669) on the tiny demo store; (server, port, network address)."""
    _, chromium = require_browser("async_api")
    if not (SHARED_PETS / "annotations" / "test.txt").is_file():
        pytest.skip(f"the shared real slice is not here ({SHARED_PETS})")
    address = class_run.own_network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    load.CHROMIUM = chromium
    with class_run.serve_class(demo_store) as (server, port):
        yield server, port, address


def chosen_photos(demo_store) -> tuple[list[class_run.Photo], list[list[str]]]:
    """Ten slice photos whose direct scores are neither all hits nor all misses (so a board that
    miscounts shows), and the board's accuracy table as it must read for them."""
    candidates = class_run.class_photos(SHARED_PETS, 30)
    top5 = class_run.direct_top5(demo_store, "demo", candidates)
    hits = [sum(p.label in t[n] for t in top5.values()) for n, p in enumerate(candidates)]
    order = sorted(range(len(candidates)), key=lambda n: -hits[n])
    picked = sorted(order[:PHONES // 2] + order[-(PHONES - PHONES // 2):])
    photos = [candidates[n] for n in picked]
    expected = class_run.expected_rows({r: [t[n] for n in picked] for r, t in top5.items()}, [p.label for p in photos])
    cells = [c for row in expected for c in row[1:]]
    assert any(not c.startswith("0.00") for c in cells) and any(not c.startswith("1.00") for c in cells), expected
    return photos, expected


async def walk_the_slides(base: str) -> tuple[list[str], list[int], str | None]:
    """The presenter on 127.0.0.1: every slide by the Right key (back by Left, PageUp, PageDown on
    the way), each slide's title and sideways scroll, and the text the join slide's QR code holds."""
    from playwright.async_api import async_playwright

    seen, sideways, decoded = [], [], None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=load.CHROMIUM, args=load.CHROMIUM_ARGS)
        page = await browser.new_page(viewport=class_run.PROJECTOR)
        page.set_default_timeout(120_000)
        await page.goto(f"{base}/present?experiment=demo&slide=1")
        for number in range(1, len(STORY) + 1):
            if number > 1:
                await page.keyboard.press("ArrowRight")
            await page.wait_for_function(f"() => location.search.includes('slide={number}')")
            await page.locator("h1").filter(has_text=STORY[number - 1]).wait_for()
            await page.wait_for_selector(IDLE)
            seen.append(await page.locator("h1").first.inner_text())
            sideways.append(await page.evaluate(SIDEWAYS_JS))
            if STORY[number - 1].startswith("Your turn"):
                code = page.get_by_test_id("stMain").get_by_role("img").first
                picture = np.array(Image.open(io.BytesIO(await code.screenshot())).convert("RGB"))
                decoded = cv2.QRCodeDetector().detectAndDecode(picture)[0]
        for key, number in (("PageUp", len(STORY) - 1), ("ArrowLeft", len(STORY) - 2), ("PageDown", len(STORY) - 1)):
            await page.keyboard.press(key)
            await page.locator("h1").filter(has_text=STORY[number - 1]).wait_for()
            seen.append(await page.locator("h1").first.inner_text())
        await page.reload()  # the address keeps the place
        await page.locator("h1").filter(has_text=STORY[len(STORY) - 2]).wait_for()
        await browser.close()
    return seen, sideways, decoded


def test_ten_phones_join_by_the_qr_code_and_the_board_scores_each_breed_head_as_a_direct_computation(
        class_server, demo_store):
    server, port, address = class_server
    photos, expected = chosen_photos(demo_store)
    seen, sideways, decoded = asyncio.run(walk_the_slides(server.url))
    assert seen == STORY + [STORY[-2], STORY[-3], STORY[-2]]
    assert sideways == [0] * len(STORY)
    live = f"http://{address}:{port}/live?experiment=demo"
    assert decoded == live

    result = asyncio.run(class_run.run_class(server, decoded, f"http://{address}:{port}", "demo", photos, expected,
                                             timeout_s=180))
    assert result.board.pets_line == f"{PHONES} pets on the board"
    assert result.board.rows[1:] == expected  # each head's top-1 and top-5, pretrained beside scratch
    assert [p.answers for p in result.phones] == [6] * PHONES and not any(p.exceptions for p in result.phones)
    assert result.presenter_camera and not any(p.camera_toggle for p in result.phones)
    assert result.board.controls and not result.visitor_controls
    assert result.agrees, result.errors
