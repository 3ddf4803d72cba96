"""README.md and docs/ stay true: the configuration table is the Settings class, the curl examples
are those the system tests run, every link and every page the code cites exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from entrypoints.settings import Settings
from tests.commands import ROOT
from tests.system import examples

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = ("architecture", "operations", "configuration", "api", "benchmark", "glossary")
CODE_DIRS = (
    "domain",
    "application",
    "adapters",
    "entrypoints",
    "bench",
    "scripts",
    "tests",
    "docker",
)


def configuration_rows() -> dict[str, tuple[str, str]]:
    text = (DOCS / "configuration.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \| (.*) \|$", text, flags=re.MULTILINE)
    return {name: (default, meaning) for name, default, meaning in rows}


def markdown_files() -> list[Path]:
    return [README, ROOT / "DEVELOPERS.md", *sorted(DOCS.glob("*.md"))]


def test_the_configuration_table_lists_every_setting_with_its_default_and_meaning() -> None:
    rows = configuration_rows()
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        assert rows[name.upper()] == (default, field.description), name


def test_each_page_shows_its_curl_examples_in_the_order_the_system_tests_run_them() -> None:
    for page in {example.page for example in examples.ALL}:
        text = (ROOT / page).read_text()
        positions = [text.index(e.command) for e in examples.ALL if e.page == page]
        assert positions == sorted(positions), page


@pytest.mark.parametrize("example", examples.ALL, ids=lambda example: example.command)
def test_a_shown_response_is_a_success_not_a_problem(example: examples.Example) -> None:
    if example.shows_response:
        shown = example.shown_response()
        assert "title" not in shown and "detail" not in shown, shown


def test_the_readme_is_short_and_has_the_quick_start_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for command in ("make run", "make test", "PORT=", "docker compose up -d"):
        assert command in text, command


def test_every_docs_page_exists_and_the_readme_links_to_it() -> None:
    readme = README.read_text()
    for page in PAGES:
        assert (DOCS / f"{page}.md").is_file(), page
        assert f"(docs/{page}.md)" in readme, page


def test_every_relative_link_points_at_a_file_that_exists() -> None:
    for markdown in markdown_files():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", markdown.read_text()):
            if not re.match(r"[a-z]+:", target):
                assert (markdown.parent / target).exists(), f"{markdown.name}: {target}"


def test_every_page_the_code_cites_exists() -> None:
    cited: set[tuple[Path, str]] = set()
    files = [
        ROOT / extra for extra in ("Makefile", "docker-compose.yml", ".env.example", "Procfile")
    ]
    for directory in CODE_DIRS:
        for path in (ROOT / directory).rglob("*"):
            if path.suffix in {".py", ".sh", ""} and path.is_file():
                files.append(path)
    for path in files:
        text = path.read_text(errors="replace")
        cited |= {(path, page) for page in re.findall(r"[\w./-]+\.md\b", text)}
    assert cited, "the code cites no page at all: the pattern is wrong"
    for path, page in cited:
        # From the repository's root, docs/, or (a file naming its neighbour) the citing folder.
        places = (ROOT / page, DOCS / page, path.parent / page)
        assert any(place.is_file() for place in places), f"{path.relative_to(ROOT)}: {page}"
