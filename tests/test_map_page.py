"""The map pages people work with: kept fields encoded for colouring (top values coloured, the rest and
missing values grey, times and numbers on a scale), GET /map's data, and pages that fetch nothing."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.render.map_fields import encode_fields, field_kind
from pipeline.render.map_style import MISSING_COLOR, OTHER_COLOR, PALETTE, SCALE_STOPS
from pipeline.render.umap_page import write_umap_html

URL = re.compile(r"https?://", re.I)


def page_json(path) -> dict:
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))


def test_a_string_field_colours_its_most_frequent_values_and_greys_the_rest_and_the_missing():
    values = [f"v{k}" for k in range(14) for _ in range(20 - k)] + [None] * 5  # v0 most frequent
    (field,) = encode_fields(pd.DataFrame({"author": values}), top=10)
    assert field["scale"] == "category" and field["kind"] == "string" and field["top"] == 10
    assert field["values"][:10] == [f"v{k}" for k in range(10)] and len(field["values"]) == 14
    assert field["counts"] == [20 - k for k in range(10)]
    assert field["other"] == sum(20 - k for k in range(10, 14)) and field["missing"] == 5
    assert field["colors"] == list(PALETTE[:10])
    assert (field["other_color"], field["missing_color"]) == (OTHER_COLOR, MISSING_COLOR)
    codes = field["codes"]
    assert [field["values"][c] for c in codes[:-5]] == values[:-5] and codes[-5:] == [-1] * 5


def test_booleans_with_gaps_read_back_from_parquet_are_categories_true_and_false(tmp_path):
    frame = pd.DataFrame({"retweet": pd.array([True, None, False, True], dtype="boolean")})
    frame.to_parquet(tmp_path / "f.parquet")
    read = pd.read_parquet(tmp_path / "f.parquet")
    assert (
        field_kind(read["retweet"]) == "boolean" and field_kind(read["retweet"].astype(object)) == "boolean"
    )
    (field,) = encode_fields(read.astype({"retweet": object}))
    assert field["kind"] == "boolean" and field["values"] == ["true", "false"]
    assert field["codes"] == [0, -1, 1, 0] and field["missing"] == 1


def test_times_and_numbers_span_a_scale_from_min_to_max_and_missing_values_are_null():
    stamps = pd.to_datetime(["2021-06-01T12:00:00Z", None, "2021-06-03T00:00:00Z"], utc=True)
    frame = pd.DataFrame(
        {
            "created_at": stamps,
            "followers": pd.array([3, None, 10], dtype="Int64"),
            "score": [0.5, np.nan, np.inf],
            "n": np.array([1, 2, 3], dtype=np.int64),
        }
    )
    kinds = {f: field_kind(frame[f]) for f in frame.columns}
    assert kinds == {"created_at": "timestamp", "followers": "integer", "score": "float", "n": "integer"}
    created, followers, score, n = encode_fields(frame)
    assert created["scale"] == "continuous" and created["stops"] == list(SCALE_STOPS)
    assert created["values"] == [1622548800, None, 1622678400]  # seconds since 1970, UTC
    assert (created["min"], created["max"], created["missing"]) == (1622548800, 1622678400, 1)
    assert followers["values"] == [3, None, 10] and isinstance(followers["values"][0], int)
    assert score["values"] == [0.5, None, None] and score["missing"] == 2  # no NaN or Infinity in JSON
    assert (n["min"], n["max"], n["missing"]) == (1, 3, 0)
    (empty,) = encode_fields(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert empty["min"] is None and empty["missing"] == 2
    json.dumps(encode_fields(frame), allow_nan=False)


def test_the_caller_s_kinds_win_over_the_dtypes():
    frame = pd.DataFrame({"year": [2020.0, 2021.0, np.nan]})  # integers with a gap read back as floats
    (field,) = encode_fields(frame, kinds={"year": "integer"})
    assert field["kind"] == "integer" and field["values"] == [2020, 2021, None]
    (as_text,) = encode_fields(pd.DataFrame({"code": [1, 2, 2]}), kinds={"code": "string"})
    assert as_text["scale"] == "category" and as_text["values"] == ["2", "1"]


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n) * 3,
            "x": rng.normal(size=n).astype(np.float32),
            "y": rng.normal(size=n).astype(np.float32),
            "label": rng.choice(["a", "b", "c"], n),
        }
    )
    fields = pd.DataFrame(
        {
            "lang": rng.choice(np.array(["es", "en", None], dtype=object), n),
            "created_at": pd.to_datetime(1.6e9 + rng.integers(0, 10**7, n), unit="s", utc=True),
        }
    )
    return frame, fields


def test_umap_html_carries_points_fields_and_the_map_code_and_asks_no_other_host(tmp_path):
    frame, fields = synthetic(50)
    target = tmp_path / "umap.html"
    texts = [f'tweet {i} </script> <!--<script> "{i}" https://t.co/x' for i in range(50)]
    write_umap_html(frame, texts, "a <title>", target, fields=fields)
    page = target.read_text(encoding="utf-8")
    data = page_json(target)
    assert data["row_id"] == frame["row_id"].tolist() and data["text"] == texts
    assert [data["label_values"][c] for c in data["label"]] == frame["label"].tolist()
    assert [f["name"] for f in data["fields"]] == ["lang", "created_at"]
    assert [f["scale"] for f in data["fields"]] == ["category", "continuous"]
    assert "const EncajesMap" in page and "__MAP_JS__" not in page and "a &lt;title>" in page
    outside_data = page.replace(re.search(r'type="application/json">.*?</script>', page, re.S).group(0), "")
    assert not URL.search(outside_data)  # the page's own markup and code name no host: nothing fetched
    assert page.count("</script>") == 2  # a tweet's "</script>" cannot end the data early
    data_block = re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data_block  # nor "<!--<script>" put the parser in a state that swallows the code


def test_the_serve_page_inlines_the_same_map_code_and_names_no_host():
    from pipeline.render.umap_page import map_script
    from pipeline.serve.page import page_html

    page = page_html()
    assert map_script() in page and "/*__MAP_JS__*/" not in page
    assert not URL.search(page)
    assert 'id="map"' in page and "EncajesMap.create(" in page and '"/similar/' not in page  # the one route
    assert "/similar/${rowId}" in page and "row_id: {in:" in page


def write_corpus(path, frame: pd.DataFrame, fields: pd.DataFrame) -> None:
    corpus = pd.DataFrame(
        {
            "row_id": frame["row_id"],
            "id": [f"t{r}" for r in frame["row_id"]],
            "text": [f"text {r}" for r in frame["row_id"]],
            "label": frame["label"],
            "split": "train",
            "source": "f.csv",
            "line": np.arange(len(frame)) + 2,
        }
    )
    pd.concat([corpus, fields], axis=1).iloc[::-1].to_parquet(path, index=False)  # not in map order


@pytest.mark.parametrize("limit", [100_000, 7])
def test_map_points_has_the_page_s_shape_with_fields_aligned_by_row_id(tmp_path, limit):
    from pipeline.render.map_file import MapMeta, ProjectionKey, write_map
    from pipeline.serve.map_data import map_points, map_points_json

    frame, fields = synthetic(40)
    write_corpus(tmp_path / "corpus.parquet", frame, fields)
    (tmp_path / "label_names.json").write_text(json.dumps({"a": "alpha"}), encoding="utf-8")
    write_map(frame, tmp_path / "umap.parquet", MapMeta(ProjectionKey("h", 15, 0.1, 0, 10), 40, 2))
    data = map_points(tmp_path / "umap.parquet", tmp_path / "corpus.parquet", limit=limit)
    rows = data["row_id"]
    assert len(rows) == min(40, limit) and rows == sorted(rows) and set(rows) <= set(frame["row_id"])
    per_point = ["x", "y", "label"] + [f"fields/{f['name']}" for f in data["fields"]]
    for key in per_point:
        column = (
            data[key]
            if "/" not in key
            else next(f.get("codes", f["values"]) for f in data["fields"] if f["name"] == key.split("/")[1])
        )
        assert len(column) == len(rows), key
    lang = next(f for f in data["fields"] if f["name"] == "lang")
    expected = fields["lang"].to_numpy()[pd.Index(frame["row_id"]).get_indexer(rows)]
    assert [None if c < 0 else lang["values"][c] for c in lang["codes"]] == [
        None if pd.isna(v) else v for v in expected
    ]
    assert sum(data["counts"]) == data["total"] == 40 and data["sampled"] == (limit < 40)
    assert len(data["groups"]) == 3 and data["groups"][-1]["other"]  # the stored map_labels: 2 coloured
    assert "alpha" in data["labels"][data["label_values"].index("a")]
    assert "text" not in data  # texts come from GET /items, for the rows the page lists
    assert data["id"] == [f"t{r}" for r in rows]  # the tweets' ids, for the CSV export
    assert json.loads(map_points_json(tmp_path / "umap.parquet", tmp_path / "corpus.parquet", limit)) == data


def test_counts_spread_over_orders_of_magnitude_are_coloured_on_a_log_scale():
    """Followers from 45 to 50 million: on a linear scale nearly every point would get one colour."""
    from pipeline.render.map_fields import continuous_field

    rng = np.random.default_rng(0)
    followers = pd.Series(np.round(10 ** rng.uniform(1.6, 7.7, 500)).astype(int))
    assert continuous_field("followers", "integer", followers).log
    assert not continuous_field("likes", "integer", pd.Series(rng.integers(0, 100, 500))).log
    assert not continuous_field("delta", "float", pd.Series(rng.normal(0, 1e6, 500))).log  # negatives
