"""The write path, driven directly on SQLite and PostgreSQL (Tortoise keeps one engine
per process, so each runs in a process of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_script


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_client_id_batches_give_the_same_outcomes_on_both_engines(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if engine == "sqlite":
        url = f"sqlite://{tmp_path / 'commit.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    run_script("commit_both_engines", url, cwd=tmp_path)


def test_one_statement_batches_number_per_room_and_write_all_or_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script("commit_batches", postgres_url, cwd=tmp_path)


def test_a_draft_the_database_refuses_fails_alone_and_its_batch_is_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script("commit_isolation", postgres_url, cwd=tmp_path)


def test_a_batch_of_more_client_ids_than_a_statement_has_parameters_is_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    run_script("commit_many_ids", postgres_url, cwd=tmp_path)
