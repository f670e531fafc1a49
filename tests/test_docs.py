"""The docs: the README's links and commands, and `mkdocs build --strict` as CI runs it."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HAS_MKDOCS = all(
    importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings_handlers")
)
needs_mkdocs = pytest.mark.skipif(not HAS_MKDOCS, reason="the docs extra is not installed")
#: The repository files the docs build reads besides docs/ and mkdocs.yml.
BUILD_INPUTS = ("lhotse_triplets", "CONTRIBUTING.md", "benchmarks")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of ``config`` into ``site``, as `.ci/run` runs it."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config)]
    return subprocess.run(
        [*command, "--site-dir", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)


def test_readme_links_resolve():
    """Every relative link and image of the README names a file of the repository."""
    targets = re.findall(r"\]\(([^)#\s]+)", README.read_text(encoding="utf-8"))
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/") for t in local), local
    assert "docs/assets/browse.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_readme_keeps_the_two_commands_and_ci_runs_the_test_command():
    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    quickstart, tests = blocks[0].strip(), blocks[1].strip()
    assert quickstart == (
        "bash scripts/setup.sh && .venv/bin/lhotse-triplets run configs/quickstart.yaml "
        "-o quickstart-out"
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci
    assert ".venv/bin/mkdocs build --strict" in ci
    assert "docs" in (ROOT / "setup.cfg").read_text(encoding="utf-8").split("all =")[1]


@pytest.mark.slow
@needs_mkdocs
def test_strict_build_has_the_pages_and_the_api(tmp_path):
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    exports = (site / "exports" / "index.html").read_text(encoding="utf-8")
    assert "Reading the export in training code" in exports
    api = (site / "api" / "export" / "index.html").read_text(encoding="utf-8")
    for name in ("export_formats", "reading.open_export", "nemo.export_nemo"):
        assert f'id="lhotse_triplets.export.{name}"' in api, name
    assert ":func:" not in api  # Sphinx roles became links (docs/_ext/sphinx_roles.py)
    assert (site / "api" / "validate" / "index.html").is_file()
    assert "Extension points" in (site / "development" / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
@needs_mkdocs
def test_strict_build_fails_on_a_broken_link(tmp_path):
    """A link to a page that does not exist fails the build and is named (the CI guard)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", repo / "docs", symlinks=True)
    shutil.copy(ROOT / "mkdocs.yml", repo / "mkdocs.yml")
    for name in BUILD_INPUTS:
        (repo / name).symlink_to(ROOT / name)
    page = repo / "docs" / "browse.md"
    page.write_text(page.read_text() + "\nSee [gone](no-such-page.md).\n", encoding="utf-8")
    result = build(repo / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr
