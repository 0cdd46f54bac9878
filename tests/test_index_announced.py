"""Opening a run for search never writes an index unannounced: the CLI and the server say on stderr
that they build one before they do, and say nothing when a fresh index is already there."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline import Workspace


def embedded(tmp_path, sample_csv, tiny_model):
    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    ws.embed(model=str(tiny_model), progress=False)
    return ws


def test_cli_search_says_it_builds_a_missing_index_on_stderr_and_not_again(tmp_path, sample_csv, tiny_model):
    import cli

    embedded(tmp_path, sample_csv, tiny_model)
    args = ["search", "-w", str(tmp_path / "w"), "-m", str(tiny_model), "gol", "-k", "2", "--json"]
    first = CliRunner().invoke(cli.main, args)
    assert first.exit_code == 0, first.output
    assert "has no fresh index: building one" in first.stderr
    assert json.loads(first.stdout)["index_built"] is True  # stdout stays one JSON object
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0 and "index" not in again.stderr
    assert json.loads(again.stdout)["index_built"] is False


def test_the_server_is_told_before_an_index_is_built(tmp_path, sample_csv, tiny_model):
    from pipeline.serve.service import open_runs

    embedded(tmp_path, sample_csv, tiny_model)
    told: list[str] = []
    (searcher,) = open_runs(tmp_path / "w", on_build=told.append)
    assert len(told) == 1 and "building one" in told[0] and searcher.index_built
    told.clear()
    (again,) = open_runs(tmp_path / "w", on_build=told.append)
    assert told == [] and not again.index_built
