"""WorldBrowser in a real browser: JupyterLab server, headless Chromium, a class picked in the dropdown.

The one end-to-end check that the widget renders and round-trips through a real front end; every other
widget test drives traits from Python. Needs Debian's ``/usr/bin/chromium`` and the ``playwright`` and
``jupyterlab`` packages (no ``playwright install``: the browser comes from Debian); see README.md here.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install jupyterlab)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
nbformat = pytest.importorskip("nbformat")

# Required on this workplace's closed network: without the background-networking flags Chromium's
# connection attempts are refused at every start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "linkviz-e2e-token"
NOTEBOOK = "world_browser.ipynb"
# The generator may not be trained yet; then the notebook browses an untrained world, built as in
# tests/widgets/test_world_browser.py (the flow under test is the same).
CELL = """\
from pathlib import Path
from linkviz.worlds.toy.world import DEFAULT_WEIGHTS
from linkviz.widgets import WorldBrowser

world = None  # the committed toy-world weights
if not (Path(DEFAULT_WEIGHTS) / "generator.safetensors").exists():
    import torch
    from linkviz.models.classifier import Classifier
    from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC, ToyWorld
    from linkviz.worlds.toy.classifier_net import ToyResNet
    from linkviz.worlds.toy.generator_net import ToyGenerator
    torch.manual_seed(0)
    generator = ToyGenerator().eval()
    generator.update_w_avg(samples_per_class=16, seed=0)
    world = ToyWorld(classifier=Classifier(ToyResNet().eval(), TOY_CLASSIFIER_SPEC), generator=generator)
b = WorldBrowser(world, n_samples=4)
b"""
KERNEL_READY = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
                   && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden) "  # Lab may keep other (hidden) notebook tabs in the DOM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(folder: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / NOTEBOOK)


@pytest.fixture
def lab_url(tmp_path):
    """A JupyterLab server on a free loopback port, rooted in a temp folder holding the notebook."""
    root, config = tmp_path / "root", tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    root.mkdir()
    # no "Jupyter news?" toast over the outputs
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    write_notebook(root)
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyter.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def page(tmp_path):
    """Headless Debian Chromium with a fresh, empty profile (user data dir) for this test."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1100})
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.mark.timeout(180)
def test_picking_a_class_in_the_browser_updates_samples_and_summary(lab_url, page, tmp_path):
    expect = sync_api.expect
    page.goto(f"{lab_url}/lab/tree/{NOTEBOOK}?token={TOKEN}&reset")  # reset: no restored workspace tabs
    page.wait_for_function(KERNEL_READY, timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    image = page.locator(VISIBLE + "img.widget-image")
    summary = page.locator(VISIBLE + ".widget-html", has_text="generated")
    picker = page.locator(VISIBLE + ".widget-dropdown select")
    try:
        expect(image).to_be_visible(timeout=60_000)
    except AssertionError:
        outputs = page.locator(VISIBLE + ".jp-OutputArea").all_inner_texts()
        raise AssertionError(f"widget did not render; cell outputs: {outputs}") from None
    shown_class = summary.locator("i")  # "<b>k/n</b> generated <i>CLASS</i> samples classified as ..."
    expect(summary).to_contain_text("classified as their class")
    expect(shown_class).to_have_text("mushroom")
    assert picker.input_value() == "mushroom"
    src_before, pixels_before = image.get_attribute("src"), image.screenshot()

    picker.select_option("house")  # a user's choice in the <select>; the kernel recomputes the samples
    expect(shown_class).to_have_text("house", timeout=30_000)  # the verdicts may still name mushroom
    expect(image).not_to_have_attribute("src", src_before)
    assert image.screenshot() != pixels_before  # blob: URLs change on every update; the pixels must too
    summary.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "world_browser_house.png")
