# ruff: noqa: F811  (the fixture imported from test_search_filters is a parameter here)
"""The ways to ask beyond a text and a filter: a vector, a page (offset), a minimum score, "more like
these, less like those"; near-duplicates folded (a retweet storm included); queries without hits kept in
the output; and a run whose corpus texts changed refused."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.api import Workspace
from tests.test_search_filters import N, brute_force, fielded  # noqa: F401 (a fixture)


def test_vector_offset_min_score_and_more_like_these(fielded):
    from pipeline.search.asking import Ask
    from pipeline.search.searcher import Searcher

    workdir, vectors, _, queries = fielded
    searcher = Searcher.open(str(workdir), "synthetic/exact", "mean")
    everything = brute_force(vectors, np.ones(N, dtype=bool), queries[:1], 30)[0]
    by_vector = searcher.search_vector(queries[0] * 3.0, Ask(10, dedup=0))  # normalised here
    assert by_vector["row_id"].tolist() == everything[:10]
    page_two = searcher.search_vector(queries[0], Ask(10, offset=10, dedup=0))
    assert page_two["row_id"].tolist() == everything[10:20] and page_two["rank"].tolist() == list(
        range(11, 21)
    )
    scores = vectors[everything] @ queries[0]
    cut = float(scores[4] + scores[5]) / 2
    assert (
        searcher.search_vector(queries[0], Ask(10, min_score=cut, dedup=0))["row_id"].tolist()
        == everything[:5]
    )
    with pytest.raises(Exception, match="has 3 numbers"):
        searcher.search_vector([1.0, 0.0, 0.0], Ask(10))
    liked = searcher.search_like(["5", "t9"], [13], Ask(5, dedup=0))  # a row id, an id, a row id
    query = vectors[[5, 9]].mean(axis=0) - vectors[13]
    query /= np.linalg.norm(query)
    keep = np.ones(N, dtype=bool)
    keep[[5, 9, 13]] = False  # the given rows are left out
    assert liked["row_id"].tolist() == brute_force(vectors, keep, query[None, :], 5)[0]


def test_collapse_folds_into_the_nearest_better_hit_and_pages_stay_stable():
    from pipeline.search.collapse import collapse

    def unit(*values):
        v = np.array(values, dtype=np.float32)
        return v / np.linalg.norm(v)

    vectors = np.stack(
        [unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0.2, 1, 0.05), unit(0, 0, 1), unit(1, 0.12, 0)]
    )
    folded, reached = collapse(vectors, 0.95, 3)
    assert [(f.at, f.similar) for f in folded] == [(0, [1, 5]), (2, [3]), (4, [])] and reached
    assert [f.at for f in collapse(vectors, 0, 3)[0]] == [0, 1, 2]  # 0: nothing folded
    rng = np.random.default_rng(0)
    many = rng.standard_normal((200, 4)).astype(np.float32)
    many /= np.linalg.norm(many, axis=1, keepdims=True)
    full = [f.at for f in collapse(many, 0.9, 50)[0]]
    assert [f.at for f in collapse(many[:80], 0.9, 50)[0]] == full[: len(collapse(many[:80], 0.9, 50)[0])]


def test_a_retweet_storm_still_gives_k_distinct_hits_filtered_or_not(tmp_path):
    """120 copies of one tweet at the top of every list: folding reads past them (more candidates, on
    the exact subset of a filter too) until k distinct hits are found, and stays cheap."""
    import time

    from pipeline.search.collapse import collapse
    from pipeline.search.searcher import Searcher
    from tests.conftest import write_csv, write_vectors_run

    rng = np.random.default_rng(3)
    n = 400
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    vectors[:120] = vectors[0]  # one tweet and 119 retweets
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ws = Workspace(tmp_path / "w")
    ws.ingest(
        [write_csv(tmp_path / "t.csv", [(f"t{i}", f"tuit {i}", "ab"[i % 2], "train") for i in range(n)])]
    )
    write_vectors_run(tmp_path / "w", vectors, "synthetic/exact")
    searcher = Searcher.open(str(tmp_path / "w"), "synthetic/exact", "mean")
    for where in (None, {"label": {"in": ["a", "b"]}}):  # the index, then the rows a filter keeps
        hits = searcher.find(vectors[:1], searcher.ask(10, where))[0]
        assert len(hits) == 10 and hits[0]["row_id"] == 0  # of equal scores, the corpus' first row
        assert sorted([hits[0]["row_id"], *hits[0]["similar"]]) == list(range(120))
    like_it = searcher.similar(5, ask=searcher.ask(10))  # a retweet's neighbours: not its own copies
    assert len(like_it) == 10 and not {h["row_id"] for h in like_it} & set(range(120))
    storm = np.repeat(vectors[:1], 20_000, axis=0)
    started = time.perf_counter()
    folded, reached = collapse(storm, 0.95, 10)
    assert len(folded) == 1 and len(folded[0].similar) == 19_999 and not reached
    assert time.perf_counter() - started < 5


def test_search_refuses_a_run_whose_corpus_texts_changed(tmp_path):
    """A re-ingest that shifts rows leaves the old vectors pointing at other tweets: search says to embed
    again instead of showing one tweet's score beside another's text."""
    from pipeline.core.errors import EncajesError
    from pipeline.search.searcher import Searcher
    from tests.conftest import write_csv, write_vectors_run

    rows = [(f"t{i}", f"tuit {i}", "a", "train") for i in range(6)]
    ws = Workspace(tmp_path / "w")
    ws.ingest([write_csv(tmp_path / "t.csv", rows)])
    from pipeline.artifacts.corpus import texts_hash
    from pipeline.core.layout import Workdir

    texts = texts_hash(Workdir.at(tmp_path / "w"))  # as `encajes embed` records it
    write_vectors_run(tmp_path / "w", np.eye(6, 8, dtype=np.float32), "synthetic/exact", texts_sha256=texts)
    Searcher.open(str(tmp_path / "w"), "synthetic/exact", "mean")
    ws.ingest([write_csv(tmp_path / "t.csv", [("new", "un tuit nuevo", "a", "train"), *rows])])
    with pytest.raises(EncajesError, match="texts changed"):
        Searcher.open(str(tmp_path / "w"), "synthetic/exact", "mean")


def test_a_query_without_hits_keeps_its_place_in_the_output(fielded):
    """A filter or a minimum score that leaves a query no hit still lists the query (JSON and text), so
    results line up with the queries asked."""
    from pipeline.search.command import SearchResult
    from pipeline.search.searcher import Searcher

    searcher = Searcher.open(str(fielded[0]), "synthetic/exact", "mean")
    vectors = fielded[3][:2]
    hits = searcher.find(vectors, searcher.ask(3, {"author": "nobody"}))
    from pipeline.search.searcher import hits_frame

    frame = hits_frame(["a", "b"], [hits[0], searcher.find(vectors[1:], searcher.ask(3))[0]])
    result = SearchResult(frame, "run", 3, False)
    assert [(r["query"], len(r["hits"])) for r in result.to_dict()["results"]] == [("a", 0), ("b", 3)]
    printed = "\n".join(result.lines())
    assert "query: a" in printed and "no hits" in printed
