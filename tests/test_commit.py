"""The PostgreSQL write path, driven directly (Tortoise keeps one engine per process,
so it runs in a process of its own)."""

from __future__ import annotations

from pathlib import Path

from tests.support import run_script


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
