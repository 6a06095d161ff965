"""One contract suite per storage port, each test run against the fake (tests/fakes) and
against Postgres (convmem.adapters.postgres). A difference between the two is a bug in
one of them: the fakes stand in for Postgres in every unit test."""

from __future__ import annotations

import pytest

from convmem.ports import Storage
from tests.fakes import fake_storage


# Sync on purpose: it only picks an implementation; the session-scoped `store` fixture
# (tests/integration/conftest.py) opens the pool, and only when a Postgres case runs.
@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.stack)])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "fake":
        return fake_storage()
    found: Storage = request.getfixturevalue("store")
    return found
