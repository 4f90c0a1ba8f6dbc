"""What ops and packagers read before they trust the package: the license, its metadata, its lock file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

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


def _locked() -> dict[str, tuple[str, list[str]]]:
    """``infra/requirements.lock``: each package's pinned version and hashes."""
    locked: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in (REPO / "infra" / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name, _, version = line.split(" ")[0].partition("==")
            locked[canonicalize_name(name)] = (version, [])
        elif "--hash=sha256:" in line:
            locked[canonicalize_name(name)][1].append(line.split("--hash=sha256:")[1].split()[0])
    return locked


def test_the_lambda_lock_pins_every_dependency_within_pyprojects_ranges() -> None:
    locked = _locked()
    for text in PROJECT["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in infra/requirements.lock: refresh it (infra/README.md)"
        version = locked[name][0]
        assert requirement.specifier.contains(version), f"{name}=={version} is outside {requirement.specifier}"


def test_every_locked_package_is_exact_and_hashed() -> None:
    locked = _locked()
    assert len(locked) > len(PROJECT["dependencies"]), "the lock holds the dependencies' dependencies too"
    for name, (version, hashes) in locked.items():
        assert Version(version), name
        assert hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in hashes), name


def test_the_build_installs_only_from_the_lock_with_hashes() -> None:
    script = (REPO / "infra" / "check.sh").read_text(encoding="utf-8")
    assert "LOCK=infra/requirements.lock" in script
    installs = [line for line in script.splitlines() if "-r build/" in line]
    assert installs == ["    --wheel-dir build/wheels -r build/sdist-requirements.txt", "    -r build/requirements.txt"]
    assert script.count("--require-hashes") == 2
