"""README.md stays true: its configuration table is the Settings class, its curl examples are
the ones the system tests run."""

from __future__ import annotations

import re

from entrypoints.settings import Settings
from tests.commands import ROOT
from tests.system import examples

README = (ROOT / "README.md").read_text()


def configuration_rows() -> dict[str, tuple[str, str]]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \| (.*) \|$", section, flags=re.MULTILINE)
    return {name: (default, meaning) for name, default, meaning in rows}


def test_the_configuration_table_lists_every_setting_with_its_default_and_meaning() -> None:
    rows = configuration_rows()
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        default = "" if field.default is None else str(field.default)
        assert rows[name.upper()] == (default, field.description), name


def test_the_curl_examples_are_those_the_system_tests_run() -> None:
    for command in examples.ALL:
        assert command in README, command


def test_the_quick_start_commands_are_there() -> None:
    for command in ("make run", "make test", "docker compose up -d"):
        assert command in README, command
