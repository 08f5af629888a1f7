"""UnitTuner latency in a real browser: from a slider release to the new image, on the toy world.

The browser counterpart of ``bench_unit_tuner_latency.py`` (which times the server side alone): a notebook with one
:class:`linkviz.widgets.UnitTuner` per scenario is served by Voilà on 127.0.0.1 and driven by headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright). The time of a move is measured inside the page, with
``performance.now()``: from the keydown that releases the slider (what commits a value of a
``continuous_update=False`` slider: noUiSlider fires its "change" on the keydown, and ipywidgets sends the one new
value to the kernel then) to the moment a ``MutationObserver`` sees the tuner's ``<img>`` get a new ``src`` (a
new ``blob:`` URL: the JPEG has come back over the websocket and been put in the page). The ``+decode`` column
adds the decoding of that image (``img.decode()``), for information. So each time is comms out, the widget's
worker (``UnitTuning.compute`` + JPEG), comms back and the front end's update.

Scenarios, values and order are those of the server-side benchmark, imported from it: :data:`SCENARIOS` (plain;
flow arrows; arrows + parts from notebook 02's few-shot segmenter), :func:`toy_setup` (the toy world linked on 20
pairs per class, its strongest unit, the class-balanced seeds and ``--moves`` slider values across the unit's
range in a shuffled order) and :func:`time_interleaved` (every scenario at a value before the next value, in a
rotating order). The three tuners share one :class:`~linkviz.controllers.UnitTuning` (its caches of linked images
and parts), as the server-side benchmark does. Targets: plain p50 <= 100 ms, arrows + parts p50 <= 400 ms.

A move, as a keyboard user makes it: the value's handle is first placed, without committing, one slider step
(1/100 of the range) beside the wanted value (``noUiSlider.set``: the readout follows, the kernel hears nothing),
then focused, and ArrowRight (or ArrowLeft at the range's low end) is pressed on it: that keypress sends the
value. Values therefore land on the slider's 1/100 grid, within half a step of the server-side benchmark's. One
untimed warm-up move per scenario comes first, and ``--pause`` seconds pass between moves (the widgets re-publish
their static snapshot about 0.5 s after a change; a user does not release the slider every few milliseconds).

Needs Debian's ``/usr/bin/chromium`` (no ``playwright install``), and ``playwright``, ``voila`` and ``nbformat``
(the ``test`` extra); skips with the reason when one is missing. Run by hand, never as a test::

    .venv/bin/python benchmarks/bench_unit_tuner_browser.py [--moves 20] [--threads 1] [--keep-artifacts DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/ is a folder of scripts, not a package

CHROMIUM = Path("/usr/bin/chromium")
# Required on this closed network: without the background-networking flags Chromium's connections are refused.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP_S = 90.0  # generous waits (on a condition): the machine may be shared
SETUP_S = 600.0  # Voilà's kernel: import torch, link the toy world, train the segmenter, first three views


def css_class(name: str) -> str:
    return "linkviz-bench-" + name.replace("+", "-")


def missing() -> str | None:
    """Why the benchmark cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"no {CHROMIUM} (apt-get install -y chromium chromium-driver; do not run `playwright install`)"
    for module in ("playwright", "voila", "nbformat"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {module}, or the project's `test` extra)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


NOTEBOOK_CELL = """\
import json, os, sys, time
sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads({threads})
import ipywidgets as ipw
from IPython.display import display
from bench_unit_tuner_latency import SCENARIOS, toy_setup
from linkviz.controllers import UnitTuning
from linkviz.widgets import UnitTuner

start = time.perf_counter()
setup = toy_setup(samples_per_class={samples}, n_seeds={seeds}, moves={moves}, cache_dir={cache_dir!r})
controller = UnitTuning(setup.linked, segmenter=setup.segmenter, segment_from="ws", part_labels=setup.part_labels)
tuners = {{}}
for scenario in SCENARIOS:
    tuner = UnitTuner(setup.linked, unit=setup.unit, seeds=setup.seeds, arrows=scenario.arrows,
                      parts=scenario.parts, controller=controller)
    tuner.add_class({css_prefix!r} + scenario.name.replace("+", "-"))
    tuners[scenario.name] = tuner
    display(ipw.HTML(f"<h3>{{scenario.name}}</h3>"))
    display(tuner)
info = dict(values=[float(v) for v in setup.values], unit=setup.unit, seeds=list(setup.seeds),
            low=float(setup.linked.stats.min[setup.unit]), high=float(setup.linked.stats.max[setup.unit]),
            torch_threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
            omp=os.environ.get("OMP_NUM_THREADS"), setup_s=time.perf_counter() - start)
with open({info_path!r}, "w") as file:
    json.dump(info, file)
"""

# Place the handle one step beside the wanted value without committing; return the key that commits it.
PREPARE = """([cls, value]) => {
    const slider = document.querySelector('.' + cls + ' .widget-slider .noUi-target');
    const api = slider.noUiSlider;
    const step = Number(api.options.step), low = Number(api.options.range.min);
    api.set(value);                       // 'update'/'set' only: the readout follows, nothing is sent
    const target = Number(api.get());
    const below = target - step >= low - 1e-9 * Math.max(1, Math.abs(step));
    api.set(below ? target - step : target + step);
    return [target, below ? 'ArrowRight' : 'ArrowLeft'];
}"""

# Arm the clock: the keydown of `key` (capture phase, before the slider's own handler) starts it, a new src of the
# tuner's image stops it; then the decode. window.__lvbMove resolves to {src, decoded} in ms.
ARM = """([cls, key, timeoutMs]) => {
    const img = document.querySelector('.' + cls + ' img.widget-image');
    const before = img.getAttribute('src');
    let t0 = null;
    const onKey = event => { if (event.key === key && t0 === null) t0 = performance.now(); };
    window.addEventListener('keydown', onKey, true);
    window.__lvbMove = new Promise((resolve, reject) => {
        const done = () => { observer.disconnect(); window.removeEventListener('keydown', onKey, true); };
        const observer = new MutationObserver(() => {
            if (t0 === null || img.getAttribute('src') === before) return;
            const t1 = performance.now();
            done();
            img.decode().then(() => performance.now(), () => NaN)
               .then(t2 => resolve({src: t1 - t0, decoded: t2 - t0}));
        });
        observer.observe(img, {attributes: true, attributeFilter: ['src']});
        setTimeout(() => { done(); reject(new Error('no new image ' + timeoutMs + ' ms after the key')); },
                   timeoutMs);
    });
    return true;
}"""


def start_voila(folder: Path, notebook: Path, threads: int):
    """``voila notebook`` on a free loopback port with its own Jupyter folders; (process, url, log)."""
    port = free_port()
    threads_env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(folder / "config"), JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **threads_env)
    command = [sys.executable, "-m", "voila", notebook.name, "--no-browser", f"--port={port}",
               "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=True"]
    log = folder / "voila.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(command, cwd=notebook.parent, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STEP_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"voila exited with {server.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return server, f"http://127.0.0.1:{port}/", log
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"voila did not listen within {STEP_S:.0f} s") from None
            time.sleep(0.2)


def stop(server: subprocess.Popen) -> None:
    server.terminate()  # Voilà shuts its kernels down on SIGTERM
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wait_for_file(path: Path, server: subprocess.Popen, page, log: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the notebook did not finish; page text: {page.inner_text('body')[-2000:]}\n"
                               f"voila log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    time.sleep(0.2)  # the writer has closed it
    return json.loads(path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=20, help="slider releases timed per scenario (2-50)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the kernel (and OMP/MKL threads)")
    parser.add_argument("--seeds", type=int, default=4, help="base examples shown (one column each)")
    parser.add_argument("--samples-per-class", type=int, default=20, help="pairs per class to fit the link")
    parser.add_argument("--cache-dir", default=None, help="cache of the sampled pairs (default: linkviz's)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between moves")
    parser.add_argument("--keep-artifacts", metavar="DIR", default=None,
                        help="keep screenshots, the notebook and the Voilà log in DIR")
    args = parser.parse_args()
    if not 2 <= args.moves <= 50:
        parser.error("--moves must be 2-50 (the values must be apart by more than a slider step, 1/100 of the range)")
    reason = missing()
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 0

    import nbformat
    import numpy as np
    from bench_unit_tuner_latency import SCENARIOS, TARGETS_MS, time_interleaved
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="linkviz-bench-browser-"))
    artifacts = Path(args.keep_artifacts) if args.keep_artifacts else None
    if artifacts:
        artifacts.mkdir(parents=True, exist_ok=True)
    info_path = folder / "tuners.json"
    cell = NOTEBOOK_CELL.format(bench=str(HERE), threads=args.threads, samples=args.samples_per_class,
                                seeds=args.seeds, moves=args.moves, cache_dir=args.cache_dir,
                                css_prefix="linkviz-bench-", info_path=str(info_path))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook_path = folder / "unit_tuner_bench.ipynb"
    nbformat.write(notebook, notebook_path)

    load_before = os.getloadavg()
    wall = time.perf_counter()
    server = None
    try:
        server, url, log = start_voila(folder, notebook_path, args.threads)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                folder / "chromium-profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 3000})
            context.set_default_timeout(STEP_S * 1000)
            try:
                page = context.new_page()
                page.goto(url, wait_until="commit")  # Voilà streams the page while the kernel runs
                info = wait_for_file(info_path, server, page, log, SETUP_S)
                for scenario in SCENARIOS:
                    image = page.locator(f".{css_class(scenario.name)} img.widget-image")
                    image.wait_for(state="visible")
                    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
                if artifacts:
                    page.screenshot(path=artifacts / "before.png", full_page=True)

                browser_ms: dict[str, list[tuple[float, float]]] = {s.name: [] for s in SCENARIOS}
                last: dict[str, float] = {}
                record = [False]  # the warm-up moves are not recorded

                def move(scenario, value: float) -> None:
                    cls = css_class(scenario.name)
                    target, key = page.evaluate(PREPARE, [cls, value])
                    step = (info["high"] - info["low"]) / 100
                    if scenario.name in last and abs(target - last[scenario.name]) < step / 2:
                        raise RuntimeError(f"{scenario.name}: {value} lands on the current value {target}")
                    page.evaluate(ARM, [cls, key, int(STEP_S * 1000)])
                    handle = page.locator(f".{cls} .widget-slider .noUi-handle").first
                    handle.focus()
                    handle.press(key)
                    result = page.evaluate("() => window.__lvbMove")
                    last[scenario.name] = target
                    if record[0]:
                        browser_ms[scenario.name].append((result["src"], result["decoded"]))
                    time.sleep(args.pause)

                values = np.asarray(info["values"])
                ordered = np.sort(values)
                warmup = (ordered[0] + ordered[1]) / 2  # apart from every timed value
                for scenario in SCENARIOS:
                    move(scenario, warmup)
                record[0] = True
                time_interleaved(move, SCENARIOS, values, warmup=0)
                if artifacts:
                    page.screenshot(path=artifacts / "after.png", full_page=True)
                    for scenario in SCENARIOS:
                        page.locator(f".{css_class(scenario.name)}").screenshot(
                            path=artifacts / f"{css_class(scenario.name)}.png")
            finally:
                context.close()
    finally:
        if server is not None:
            stop(server)
        if artifacts:
            for name in ("voila.log", notebook_path.name):
                if (folder / name).exists():
                    shutil.copy(folder / name, artifacts / name)
        shutil.rmtree(folder, ignore_errors=True)

    load_after = os.getloadavg()
    print(f"UnitTuner in the browser (Voilà + headless Chromium, slider release -> new image src), toy world, cpu; "
          f"kernel torch threads {info['torch_threads']} (interop {info['interop_threads']}, "
          f"OMP_NUM_THREADS {info['omp']}), {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / "
          f"{load_after[0]:.1f} after (1 min); unit {info['unit']}, seeds {tuple(info['seeds'])}, "
          f"{args.moves} interleaved moves per scenario, {args.pause:g} s apart; kernel setup "
          f"{info['setup_s']:.0f} s, {time.perf_counter() - wall:.0f} s in all")
    print(f"  {'scenario':<14} {'p50 ms':>8} {'p95 ms':>8} {'+decode p50':>12}  target")
    for scenario in SCENARIOS:
        times = np.asarray(browser_ms[scenario.name])
        p50, p95 = np.percentile(times[:, 0], [50, 95])
        decoded = np.nanpercentile(times[:, 1], 50)
        target = TARGETS_MS.get(scenario.name)
        verdict = "" if target is None else f"p50 <= {target:.0f} ms: {'met' if p50 <= target else 'NOT met'}"
        print(f"  {scenario.name:<14} {p50:8.1f} {p95:8.1f} {decoded:12.1f}  {verdict}")
    if artifacts:
        print(f"  screenshots, notebook and Voilà log in {artifacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
