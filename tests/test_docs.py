"""The README stays true: its configuration table is the settings' own."""

from __future__ import annotations

from pathlib import Path

from common.cli.main import parser
from common.config import markdown_table

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_readme_configuration_table_matches_the_settings() -> None:
    assert markdown_table() in README, "regenerate it with `streamfleet config`"


def test_readme_names_every_command() -> None:
    section = README.split("## Commands", 1)[1].split("```")[1]
    words = set(section.replace("|", " ").split())
    choices = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert choices is not None
    subcommands = set(choices)
    assert subcommands <= words, subcommands - words
