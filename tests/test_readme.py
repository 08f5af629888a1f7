"""Every code block of README.md is run or checked: python blocks run in a subprocess (temporary folder, temporary
cache), bash blocks that are not cheap carry a ``<!-- not executed: why -->`` comment and each of their commands
is checked to exist, the ``text`` block is what ``make demo`` prints last, and the BibTeX parses."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from linkviz.demo import app_command

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_EXECUTED = re.compile(r"^<!-- not executed: (?P<why>.+?) -->$")
BLOCK = re.compile(r"(?ms)^```(?P<language>[\w-]*)\n(?P<body>.*?)^```$")


def readme_blocks(text: str) -> list[tuple[str, str, str]]:
    """``(language, body, line before)`` of every fenced code block of a markdown text, in order."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        blocks.append((match["language"], match["body"], before))
    return blocks


BLOCKS = readme_blocks(README.read_text())


def _ids(kind: str) -> list[str]:
    return [f"{kind}-{n}" for n, block in enumerate(b for b in BLOCKS if b[0] == kind)]


def shell_commands(body: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments and leading ``VAR=value`` dropped."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def _makefile_targets() -> set[str]:
    return set(re.findall(r"(?m)^([\w.-]+):", (ROOT / "Makefile").read_text()))


def check_command(words: list[str]) -> None:
    """Fail unless the program, its subcommand and the repository paths a not-executed command names exist."""
    program, *arguments = words
    for argument in arguments:
        if argument.startswith("notebooks/"):
            assert (ROOT / argument).exists(), f"{' '.join(words)}: {argument} does not exist"
    name = Path(program).name
    if name == "make":
        assert arguments[0] in _makefile_targets(), f"no Makefile target {arguments[0]!r}"
    elif name in ("python", "python3"):
        assert arguments[0] == "-m" and importlib.util.find_spec(arguments[1]), f"no module {arguments[1:2]}"
    elif name in ("jupyter", "voila"):
        assert (Path(sys.executable).parent / name).exists(), f"{name} is not installed beside {sys.executable}"
        if program.startswith(".venv/"):
            assert Path(sys.executable).parent.parent.resolve() == (ROOT / ".venv").resolve(), (
                "the README names .venv/bin; run the tests with the .venv interpreter")
        if name == "jupyter":
            subcommand = arguments[0]
            assert importlib.util.find_spec({"lab": "jupyterlab", "nbconvert": "nbconvert"}[subcommand])
            if subcommand == "nbconvert":
                exporter = arguments[arguments.index("--to") + 1]
                names = {e.name for e in importlib.metadata.entry_points(group="nbconvert.exporters")}
                assert exporter in names | {"notebook", "html"}, f"no nbconvert exporter {exporter!r}"
        else:
            assert importlib.util.find_spec("voila")
    else:
        raise AssertionError(f"the test does not know how to check {' '.join(words)!r}; run it or teach the test")


def test_every_block_is_of_a_kind_the_test_runs_or_checks():
    assert {language for language, _, _ in BLOCKS} <= {"python", "bash", "text", "bibtex"}
    for language, body, before in BLOCKS:
        if language == "bash":  # no bash block here is cheap and safe, so each says why it is not executed
            assert NOT_EXECUTED.match(before), f"bash block without a '<!-- not executed: ... -->' line:\n{body}"


def test_the_app_picture_comes_first_and_exists():
    text = README.read_text()
    head = text.split("\n## ", 1)[0]
    picture = re.search(r"!\[[^\]]+\]\((?P<path>[^)]+)\)", head)
    assert picture and (ROOT / picture["path"]).is_file()


def test_the_first_widget_example_is_ten_lines_at_most():
    section = README.read_text().split("## A first widget", 1)[1].split("\n## ", 1)[0]
    (language, body, _), = readme_blocks(section)
    assert language == "python" and len(body.strip().splitlines()) <= 10 and "UnitTuner(linked)" in body


def test_the_course_section_links_to_the_course():
    assert "](notebooks/course/README.md)" in README.read_text()


@pytest.mark.parametrize("body", [b for language, b, _ in BLOCKS if language == "python"], ids=_ids("python"))
@pytest.mark.timeout(1200)
def test_python_block_runs(body, tmp_path):
    env = {**os.environ, "LINKVIZ_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                         timeout=1100)
    assert run.returncode == 0, f"README block failed:\n{body}\n{run.stderr[-3000:]}"


@pytest.mark.parametrize("body", [b for language, b, _ in BLOCKS if language == "bash"], ids=_ids("bash"))
def test_bash_block_commands_exist(body):
    commands = shell_commands(body)
    assert commands
    for words in commands:
        check_command(words)


def test_check_command_fails_on_what_does_not_exist():
    assert shell_commands("A=1 make demo  # comment\npython -m x \\\n  --y\n") == [["make", "demo"],
                                                                               ["python", "-m", "x", "--y"]]
    for words in (["make", "no-such-target"], ["python", "-m", "no_such_module_here"], ["rm", "-rf", "x"],
                  ["voila", "notebooks/missing.ipynb"]):
        with pytest.raises(AssertionError):
            check_command(words)


def test_text_block_is_what_make_demo_prints_last():
    (body,) = [b for language, b, _ in BLOCKS if language == "text"]
    where, app = body.strip().splitlines()
    assert where == ("figures are in demo-output/ (samples.png, link_cycle.png, sweep.png, counterfactual.png, "
                     "counterfactual_probabilities.png)")
    assert app == f"open the app: {app_command(python=ROOT / '.venv' / 'bin' / 'python', cwd=ROOT)}"
    assert app.endswith(".venv/bin/jupyter lab notebooks/explore.ipynb")


def test_bibtex_cites_the_three_methods():
    (body,) = [b for language, b, _ in BLOCKS if language == "bibtex"]
    assert body.count("{") == body.count("}")
    entries = re.findall(r"@(\w+)\{(\w+),(.*?)\n\}", body, flags=re.DOTALL)
    assert len({key for _, key, _ in entries}) == len(entries) == 3
    for _, key, fields in entries:
        assert {"title", "author", "year"} <= set(re.findall(r"(?m)^\s*(\w+)\s*=", fields)), key
    titles = " ".join(fields for _, _, fields in entries)
    for title in ("Linking in Style", "Network Dissection", "Latent Visual-Semantic Filter Attention"):
        assert title in titles
