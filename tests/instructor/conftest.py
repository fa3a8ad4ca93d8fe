"""Fixtures shared by the tests of instructor's modules (tests/conftest.py has the suite's own)."""

from __future__ import annotations

import shutil

import pytest

from instructor import testing


@pytest.fixture(scope="module")
def trivial_released(tmp_path_factory):
    """:func:`instructor.testing.trivial_course` with four submissions, made
    once per module: use :func:`trivial_course`, a copy, in a test that writes to it."""
    return testing.trivial_course(tmp_path_factory.mktemp("trivial") / "course", 4)


@pytest.fixture
def trivial_course(trivial_released, tmp_path):
    """A copy of the trivial course of this module (its SQLite gradebook included), the test's own."""
    return shutil.copytree(trivial_released, tmp_path / "course", symlinks=True)
