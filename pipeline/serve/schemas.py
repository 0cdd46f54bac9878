"""The HTTP API's typed requests and responses: what ``/docs`` shows and what FastAPI checks.

Requests forbid unknown fields, so a typo (``"querry"``) is a 422 that names it instead of a silent
default. Caps that the server is started with (``k``, texts per request, text size) are checked by the
service, since they are settings, and stated in ``/info``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


FILTER_HELP = (
    'Only rows whose fields match, e.g. {"lang": "es", "created_at": {"gte": "2021-06-01"}, '
    '"author": {"in": ["el_pais"]}, "retweet": false}: a value is equality, a list \'in\', null '
    "'missing'; operators eq, ne, in, gt, gte, lt, lte, missing. Any kept field, label, split, id, source "
    "and row_id; checked against the corpus' fields, never run as code."
)


class RunChoice(Strict):
    model: StrictStr | None = Field(
        None, description="Which served run: its model (alias, hub id or folder). Default: the first."
    )
    pooling: StrictStr | None = Field(None, description="Which served run: its pooling.")


class SearchRequest(RunChoice):
    query: StrictStr | list[StrictStr] | None = Field(
        None, description="A text, or a list of texts (one result list each)."
    )
    vector: list[float] | None = Field(
        None, description="Or a query vector of the run's dimension (normalised here)."
    )
    positive: list[StrictInt] | None = Field(
        None, description="Or more like these row ids (their mean vector); they are left out of the hits."
    )
    negative: list[StrictInt] | None = Field(None, description="...and less like these row ids.")
    k: StrictInt = Field(10, description="Distinct hits per query (1 up to the server's max_k).")
    offset: StrictInt = Field(0, ge=0, description="Skip this many distinct hits: the next page.")
    min_score: float | None = Field(None, ge=-1, le=1, description="Only hits with at least this cosine.")
    dedup: float = Field(
        0.95, ge=0, le=1, description="Fold hits within this cosine of a better hit into it; 0: off."
    )
    filter: dict[str, Any] | None = Field(
        None,
        description=FILTER_HELP,
        examples=[{"lang": "es", "created_at": {"gte": "2021-06-01"}, "retweet": False}],
    )


class Hit(BaseModel):
    rank: int
    score: float = Field(description="Cosine similarity.")
    row_id: int
    id: str | None
    label: str | None
    text: str
    fields: dict[str, Any] = Field(default_factory=dict, description="The row's kept fields.")
    similar: list[int] = Field(
        default_factory=list, description="Row ids of near-duplicates folded into this hit."
    )


class SearchResponse(BaseModel):
    results: list[list[Hit]] = Field(description="One list per query, best first.")
    model: str
    pooling: str


class Item(BaseModel):
    row_id: int
    id: str | None
    label: str | None
    split: str | None
    text: str
    fields: dict[str, Any] = Field(default_factory=dict, description="The row's kept fields.")


class SimilarResponse(SearchResponse):
    row: Item = Field(description="The row whose neighbours these are (never among them).")


class ItemsResponse(BaseModel):
    items: list[Item]


class EmbeddingRequest(Strict):
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]] = Field(
        description="A text or a list of texts. Token ids (another tokenizer's) are refused: send text."
    )
    model: StrictStr | None = Field(None, description="Which served run's model. Default: the first.")
    pooling: StrictStr | None = Field(None, description="Which served run's pooling (an encajes extra).")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes, as OpenAI's clients ask for by default."
    )
    user: StrictStr | None = Field(None, description="Accepted for OpenAI compatibility; unused.")
    dimensions: StrictInt | None = Field(
        None, description="Accepted only when it is the run's dimension (no shortened vectors)."
    )


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class Limits(BaseModel):
    max_k: int
    max_texts: int
    max_text_chars: int
    max_row_ids: int
    max_body_bytes: int
    batch_wait_ms: float
    max_queued_texts: int


class RunInfo(BaseModel):
    model: str = Field(description="The name requests use: the model, with @layer6 (@last4, @first-last) "
                       "for a run of another hidden layer than the last.")  # fmt: skip
    pooling: str
    layer: str = Field(
        "last", description="The hidden layer pooled: last, a layer number, last4, first-last."
    )
    title: str = ""
    dim: int
    dtype: str
    max_length: int
    prefix: str
    rows: int
    index_kind: str
    index_search_params: str
    recall_at_10: float | None = Field(description="Measured against exact search; None for exact.")
    filtered_recall_at_10: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Recall@10 under random filters keeping a share of the rows (exact: scored exactly).",
    )
    has_map: bool
    texts_per_pass: int
    tokens_per_pass: int
    batching: dict[str, float]


class InfoResponse(BaseModel):
    version: str
    workdir: str
    runs: list[RunInfo] = Field(description="Served runs; the first is the default.")
    limits: Limits


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
