"""Where the model catalogue is found: in a checkout and in a non-editable install (the container image).

Building a wheel here would be too slow for the suite, so the resolution function is tested on
temporary layouts, and the packaging side by reading pyproject.toml and the symlink.
"""

from __future__ import annotations

import shutil
import tomllib

import pytest

from pipeline.catalogue import PACKAGE_DIR, CatalogueError, find_catalogue, load_catalogue
from tests.paths import REPO

ROOT = REPO
REAL = ROOT / "models" / "catalogue.toml"


def test_checkout_reads_models_catalogue(tmp_path):
    repo, package = tmp_path / "repo", tmp_path / "repo" / "pipeline"
    (repo / "models").mkdir(parents=True)
    package.mkdir()
    shutil.copy(REAL, repo / "models" / "catalogue.toml")
    shutil.copy(REAL, package / "catalogue.toml")
    assert find_catalogue(repo, package) == repo / "models" / "catalogue.toml"


def test_installed_package_reads_its_own_copy(tmp_path):
    # site-packages: pipeline/ next to other packages, no models/ directory.
    site, package = tmp_path / "site-packages", tmp_path / "site-packages" / "pipeline"
    package.mkdir(parents=True)
    shutil.copy(REAL, package / "catalogue.toml")
    found = find_catalogue(site, package)
    assert found == package / "catalogue.toml"
    assert "sentiment-minilm-rt" in load_catalogue(found).entries


def test_missing_catalogue_names_where_it_looked(tmp_path):
    with pytest.raises(CatalogueError) as err:
        find_catalogue(tmp_path / "repo", tmp_path / "pkg")
    assert str(tmp_path / "repo" / "models" / "catalogue.toml") in str(err.value)
    assert str(tmp_path / "pkg" / "catalogue.toml") in str(err.value)


def test_package_copy_is_the_models_file():
    packaged = PACKAGE_DIR / "catalogue.toml"
    assert packaged.is_symlink(), "pipeline/catalogue.toml must stay a symlink, or the two copies drift apart"
    assert packaged.resolve() == REAL.resolve()


def test_pyproject_ships_the_catalogue_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "catalogue.toml" in config["package-data"]["pipeline"]
    assert "pipeline*" in config["packages"]["find"]["include"]
