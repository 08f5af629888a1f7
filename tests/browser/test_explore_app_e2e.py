"""``linkviz.explore`` as a standalone Voilà page: notebooks/explore.ipynb served by Voilà, driven in headless Chromium.

The page must show the app's seven tabs, make the unit tuning tab when it is selected (pairs, link and the toy
world's part segmenter are made in the kernel, with a progress bar, the first time), and redraw the tuner when the
user picks another unit (the header then names the new unit), when the value slider is moved with the keyboard and
when the part overlay is switched on (its legend gives the segmenter's IoU per part). A screenshot of the whole
page goes to the test's ``tmp_path``
(``explore_unit_tuning.png``); with ``LINKVIZ_APP_SCREENSHOT=docs/app.png`` the flow arrows are switched on too
and the app alone is written there, for the README.

Needs what the other browser tests need (Debian's ``/usr/bin/chromium``, ``playwright``) and ``voila``, all in
the ``test`` extra; it skips, with the reason, when one is missing. The Voilà server runs once for the module on a
free loopback port, with its own Jupyter folders and a fresh linkviz cache (``LINKVIZ_CACHE``), and is stopped
at the end; its log is ``voila.log`` in the module's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_session import STEP_MS, free_port, missing

REASON = missing() or (None if importlib.util.find_spec("voila") else "voila is not installed (pip install voila)")
if REASON:
    pytest.skip(REASON, allow_module_level=True)
from playwright.sync_api import expect  # after the skip: playwright may be missing

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
SCREENSHOT_ENV = "LINKVIZ_APP_SCREENSHOT"  # a path (relative to the repository) to write the app's screenshot to
TITLES = ["world samples", "link quality", "unit tuning", "counterfactuals", "population", "dissection", "unit card"]


@dataclass
class Voila:
    url: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _stop(server: subprocess.Popen) -> None:
    server.terminate()  # Voilà shuts its kernels down on SIGTERM
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def voila(tmp_path_factory) -> Iterator[Voila]:
    """``voila notebooks/explore.ipynb`` on a free loopback port, stopped at the end of the module."""
    home = tmp_path_factory.mktemp("voila")
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               LINKVIZ_CACHE=str(home / "linkviz-cache"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
               "--Voila.port_retries=0", "--show_tracebacks=True"]
    log = home / "voila.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    voila = Voila(f"http://127.0.0.1:{port}/", log)
    try:
        deadline = time.monotonic() + STEP_MS / 1000
        while True:
            if server.poll() is not None:
                pytest.fail(f"voila exited with {server.returncode}:\n{voila.tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not listen within {STEP_MS // 1000} s:\n{voila.tail()}")
                time.sleep(0.2)
        yield voila
    finally:
        _stop(server)


def changed_pixels(element, before: bytes, timeout_s: float) -> bytes:
    """Wait until the element's screenshot differs from ``before``; return the new one."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = element.screenshot()
        if after != before:
            return after
        if time.monotonic() > deadline:
            raise AssertionError(f"the image did not change within {timeout_s:.0f} s")
        time.sleep(0.5)


@pytest.mark.timeout(1200)
def test_the_app_runs_as_a_voila_page_and_the_unit_tuner_follows_a_new_unit(voila, browser, tmp_path):
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 1100})
    try:
        page.goto(voila.url, wait_until="commit", timeout=STEP_MS)  # Voilà streams the page while the kernel runs
        tabs = page.locator(".linkviz-explore .lm-TabBar-tab")
        try:
            expect(tabs).to_have_count(len(TITLES), timeout=4 * STEP_MS)  # kernel start, toy world, the app
        except AssertionError:
            raise AssertionError(f"the app did not render; page text: {page.inner_text('body')[-2000:]}\n"
                                 f"voila log:\n{voila.tail()}") from None
        assert [text.strip() for text in tabs.all_inner_texts()] == TITLES
        samples = page.locator(".linkviz-tab-world img.widget-image")
        expect(samples).to_be_visible()
        expect(samples).to_have_js_property("complete", True)

        tabs.filter(has_text="unit tuning").click()  # pairs, link and part segmenter are made, then the tuner
        tuner = page.locator(".linkviz-tab-tuning")
        image = tuner.locator("img.widget-image")
        try:
            expect(image).to_be_visible(timeout=6 * STEP_MS)
        except AssertionError:
            raise AssertionError(f"the unit tuning tab did not render; its text: {tuner.inner_text()}\n"
                                 f"voila log:\n{voila.tail()}") from None
        expect(image).to_have_js_property("complete", True)
        unit = tuner.locator(".widget-text input[type=number]").first
        status = page.locator(".linkviz-explore .widget-html", has_text="selected in every tab")
        before = int(unit.input_value())
        expect(status).to_contain_text(f"unit {before} selected in every tab")
        src, pixels = image.get_attribute("src"), image.screenshot()

        strongest = tuner.locator(".widget-dropdown", has_text="strongest").locator("select")  # "unit U: effect E"
        labels = strongest.locator("option").evaluate_all("options => options.map(option => option.value)")
        label = next(text for text in labels if text.startswith("unit ") and text.split(":")[0] != f"unit {before}")
        chosen = int(label.split(":")[0].removeprefix("unit "))
        strongest.select_option(value=label)  # a user's pick; the kernel redraws the tuner and tells every tab
        expect(unit).to_have_value(str(chosen), timeout=STEP_MS)
        expect(status).to_contain_text(f"unit {chosen} selected in every tab", timeout=STEP_MS)
        expect(image).not_to_have_attribute("src", src, timeout=STEP_MS)
        changed_pixels(image, pixels, STEP_MS / 1000)  # blob: URLs change on every update; the pixels must too
        expect(tuner.locator(".widget-html", has_text=f"unit {chosen}").first).to_be_visible()

        slider = tuner.locator(".widget-slider").first  # the value: moved with the keyboard (End)
        readout, pixels = slider.locator(".widget-readout").inner_text(), image.screenshot()
        slider.locator(".noUi-handle").first.focus()
        page.keyboard.press("End")
        expect(slider.locator(".widget-readout")).not_to_have_text(readout, timeout=STEP_MS)
        changed_pixels(image, pixels, STEP_MS / 1000)

        parts = tuner.locator(".widget-checkbox", has_text="parts").locator("input")  # the world's segmenter
        expect(parts).to_be_enabled()
        pixels = image.screenshot()
        parts.check()
        expect(tuner.locator(".widget-html", has_text="segmenter IoU").first).to_be_visible(timeout=STEP_MS)
        changed_pixels(image, pixels, STEP_MS / 1000)
        parts.uncheck()  # and the overlay goes again before the screenshots below
        expect(tuner.locator(".widget-html", has_text="segmenter IoU")).to_have_count(0, timeout=STEP_MS)

        target = os.environ.get(SCREENSHOT_ENV)
        if target:  # the README's picture: with the flow arrows on
            pixels = image.screenshot()
            tuner.locator(".widget-checkbox", has_text="flow arrows").locator("input").check()
            expect(tuner.locator(".widget-html", has_text="Last row: motion").first).to_be_visible(timeout=STEP_MS)
            changed_pixels(image, pixels, STEP_MS / 1000)
        page.set_viewport_size({"width": 1280, "height": 1800})  # the whole app in view
        page.mouse.move(0, 0)  # no hover highlight in the screenshots
        page.screenshot(path=tmp_path / "explore_unit_tuning.png", full_page=True)
        if target:
            path = Path(target) if Path(target).is_absolute() else ROOT / target
            path.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".linkviz-explore").screenshot(path=path)
    finally:
        page.close()
