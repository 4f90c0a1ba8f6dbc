"""What ops and packagers read before they trust the package: the license, its metadata, its lock file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_no_stub_package_for_a_library_that_ships_its_own_types() -> None:
    import slugify

    assert (Path(slugify.__file__).parent / "py.typed").is_file()
    every = [*PROJECT["dependencies"], *(name for group in PROJECT["optional-dependencies"].values() for name in group)]
    assert not [name for name in every if name.startswith("types-python-slugify")]


def test_the_metadata_names_where_the_project_lives_and_what_it_is() -> None:
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(PROJECT["urls"])
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers  # requires-python's floor
    assert "Programming Language :: Python :: 3.12" in classifiers  # the Lambda runtime
    assert "Typing :: Typed" in classifiers
    assert (REPO / "src" / "digestpub" / "py.typed").is_file()
