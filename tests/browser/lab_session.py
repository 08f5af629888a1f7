"""One JupyterLab server and one headless Chromium for the whole browser session, notebooks opened in them, and
exported HTML opened offline.

Needs Debian's ``/usr/bin/chromium`` and the ``jupyterlab`` and ``playwright`` packages (no ``playwright
install``); every test here skips, with the reason, when one is missing. See README.md in this folder. The
fixtures ``lab`` and ``browser`` are session-scoped (conftest.py imports them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CHROMIUM = Path("/usr/bin/chromium")
# Required on this workplace's closed network: without the background-networking flags Chromium's
# connection attempts are refused at every start.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "linkviz-e2e-token"
STEP_MS = 90_000  # generous: the machine may be shared with other jobs
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden) "  # Lab may keep other (hidden) notebook tabs in the DOM
KERNEL_READY = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
                   && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
# "ran" once every code cell has an execution count, "failed" once a cell shows an error (Lab then skips the rest)
ALL_CELLS_RUN = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel || kernel.status !== 'idle') return false;
    const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
    for (const cell of cells) {
        for (let k = 0; k < cell.model.outputs.length; k++) {
            if (cell.model.outputs.get(k).type === 'error') return 'failed';
        }
    }
    return cells.every(cell => cell.model.executionCount !== null) ? 'ran' : false;
}"""
# The kernel finds the tests' fake worlds and e2e_widgets.py; a user's notebook would not need this line.
PATH_CELL = f"import sys\nsys.path[:0] = [{str(TESTS)!r}, {str(HERE)!r}]"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return "no /usr/bin/chromium (apt-get install -y chromium chromium-driver)"
    for module, package in (("jupyterlab", "jupyterlab"), ("playwright.sync_api", "playwright"),
                            ("nbformat", "nbformat")):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return f"{package} is not installed (pip install {package})"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: its URL and the folder it serves."""

    url: str
    root: Path
    log: Path

    def write_notebook(self, name: str, cells: Sequence[str]) -> Path:
        import nbformat

        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = self.root / name
        nbformat.write(notebook, path)
        return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on a free loopback port with its own settings (no windowing, no autosave), stopped at the end."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("jupyterlab")
    root, config, settings = home / "root", home / "config", home / "settings"
    root.mkdir()
    (config / "labconfig").mkdir(parents=True)
    # no "Jupyter news?" toast over the outputs
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    # every cell attached to the DOM (no windowing), and no autosave racing the tests' own saves
    for plugin, values in (("notebook-extension/tracker", {"windowingMode": "none"}),
                           ("docmanager-extension/plugin", {"autosave": False})):
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = home / "jupyter.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within 90 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield Lab(url, root, log)
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """Stop the server (it shuts its kernels down on SIGTERM)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Debian Chromium with a fresh, empty profile, shared by the session (one context, many pages)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=STEP_MS)  # every expect() waits as long as a step may take (default: 5 s)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 2000}, accept_downloads=False)
        context.set_default_timeout(STEP_MS)
        try:
            yield context
        finally:
            context.close()


def open_notebook(lab: Lab, browser, name: str, cells: Sequence[str]):
    """Write a notebook, open it in a new page, run all its cells and wait until every one has run.

    Returns
    -------
    playwright.sync_api.Page
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    lab.write_notebook(name, cells)
    page = browser.new_page()
    page.goto(f"{lab.url}/lab/tree/{name}?token={TOKEN}&reset")  # reset: no restored workspace tabs
    page.wait_for_function(KERNEL_READY, timeout=STEP_MS)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        outcome = page.wait_for_function(ALL_CELLS_RUN, timeout=4 * STEP_MS, polling=500).json_value()
    except PlaywrightTimeout:
        outcome = "timed out"
    if outcome != "ran":
        raise AssertionError(f"the cells of {name} did not all run ({outcome}); outputs: {outputs_text(page)}")
    return page


def outputs_text(page) -> list[str]:
    return page.locator(VISIBLE + ".jp-OutputArea").all_inner_texts()


def cell_output(page, index: int):
    """The output area of code cell ``index`` of the visible notebook."""
    return page.locator(VISIBLE + ".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


def save_notebook(page, path: Path, *, contains: str) -> dict:
    """Save the visible notebook from Lab and wait until the file on disk holds ``contains``; return it as JSON."""
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    deadline = time.monotonic() + STEP_MS / 1000
    while True:
        text = path.read_text(encoding="utf-8")
        if contains in text:
            return json.loads(text)
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} was not saved with {contains!r} within {STEP_MS // 1000} s")
        time.sleep(0.3)


@dataclass
class OfflinePage:
    """A page opened from a file with every request that is not a file refused; the refused URLs."""

    page: object
    blocked: list[str]

    def image_sizes(self, element) -> list[tuple[int, int]]:
        """The rendered sizes of the images inside ``element`` that loaded and have a non-zero size."""
        sizes = element.locator("img").evaluate_all(
            "images => images.map(img => [img.complete && img.naturalWidth > 0, img.getBoundingClientRect().width,"
            " img.getBoundingClientRect().height])")
        return [(int(w), int(h)) for loaded, w, h in sizes if loaded and w > 0 and h > 0]


def open_offline(browser, html: Path) -> OfflinePage:
    """Open an HTML file as a reader without a network would: ``file://`` only, every other request aborted."""
    page = browser.new_page()
    blocked: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort("internetdisconnected")

    page.route("**/*", route)
    page.goto(html.resolve().as_uri(), wait_until="load")
    return OfflinePage(page, blocked)
