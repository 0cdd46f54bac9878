"""The routes: typed requests in, typed responses out, over the ``Service`` the app was made with."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.core.errors import EncajesError
from pipeline.core.version import __version__
from pipeline.search.asking import vector_query
from pipeline.search.searcher import DEDUP, ROW_ID
from pipeline.serve.metrics import CONTENT_TYPE
from pipeline.serve.page import page_html
from pipeline.serve.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    InfoResponse,
    ItemsResponse,
    SearchRequest,
    SearchResponse,
    SimilarResponse,
)
from pipeline.serve.service import RequestError, Service, embedding_payload

PAGE = page_html()
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (404, 413, 422, 503)
}
router = APIRouter()


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    """Serialised here with orjson, past the response model (which still documents the shape in /docs):
    the hot routes build plain dicts of known shape, and float32 arrays are written as the shortest text
    that reads back to the same float32 (orjson writes numpy arrays directly; the stdlib's json walks
    Python floats one by one)."""
    dumped = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(dumped, status_code=status, media_type="application/json")


def the_service(request: Request) -> Service:
    return request.app.state.service


Served = Annotated[Service, Depends(the_service)]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def search_page() -> HTMLResponse:
    return HTMLResponse(PAGE)


@router.get("/health")
async def health(service: Served) -> Response:
    """200 while every run's worker thread runs; 503 with why once one has died (restart the server)."""
    dead = [f"{run.model} / {run.pooling}" for run in service.runs if not run.batcher.alive]
    if dead:
        why = f"the encoder thread of {', '.join(dead)} has stopped; restart encajes serve"
        return json_response({"status": "unavailable", "why": why}, 503)
    return json_response({"status": "ok"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus' text format: requests, errors and latency by route, queued texts, texts per pass."""
    return Response(request.app.state.metrics.text(), media_type=CONTENT_TYPE)


@router.get("/info", response_model=InfoResponse)
async def info(service: Served) -> dict[str, Any]:
    limits = service.settings
    return {
        "version": __version__,
        "workdir": str(service.workdir),
        "runs": [run.info() for run in service.runs],
        "limits": {
            "max_k": limits.max_k,
            "max_texts": limits.max_texts,
            "max_text_chars": limits.max_text_chars,
            "max_row_ids": limits.max_row_ids,
            "max_body_bytes": service.max_body_bytes,
            "batch_wait_ms": limits.batch_wait_ms,
            "max_queued_texts": limits.max_queued_texts,
        },
    }


@router.post("/search", response_model=SearchResponse, responses=ERRORS)
async def search(request: SearchRequest, service: Served) -> Response:
    """Nearest corpus rows to each query text, to a vector, or to rows liked and disliked (one result
    list per query), near-duplicates folded, only rows the filter keeps."""
    asked = [request.query is not None, request.vector is not None, request.positive is not None]
    if sum(asked) != 1:
        raise RequestError(422, "Give exactly one of 'query' (text), 'vector' or 'positive' (row ids).")
    if request.negative and request.positive is None:
        raise RequestError(422, "'negative' needs 'positive': less like those, more like which?", "negative")
    run = service.pick(request.model, request.pooling)
    texts = service.check_texts(request.query, "query") if request.query is not None else []
    where = request.filter
    ask = await service.ask(run, request.k, where, request.dedup, request.min_score, request.offset)
    searcher = run.searcher
    if texts:
        job = await run.encode(texts, ask)
        results = job.hits
    elif request.vector is not None:
        try:
            query = vector_query(request.vector, searcher.index.dim)
        except EncajesError as error:
            raise RequestError(422, str(error), "vector") from None
        results = await run.batcher.call(searcher.find, query[None, :], ask)
    else:
        positive = service.check_rows(run, request.positive or [], "positive")
        negative = service.check_rows(run, request.negative or [], "negative")
        try:
            query = searcher.like_query(positive, negative)
        except EncajesError as error:
            raise RequestError(422, str(error), "positive") from None
        ask = replace(ask, leave_out=(*positive, *negative))
        results = await run.batcher.call(searcher.find, query[None, :], ask)
    return json_response({"results": results, "model": run.model, "pooling": run.pooling})


@router.get("/similar/{row_id}", response_model=SimilarResponse, responses=ERRORS)
async def similar(
    service: Served,
    row_id: int,
    k: int = 10,
    model: str | None = None,
    pooling: str | None = None,
    label: str | None = None,
    split: str | None = None,
    dedup: float = Query(DEDUP, ge=0, le=1, description="Fold near-duplicates; 0: off."),
    filter: str | None = Query(None, description="A JSON object, as /search's filter."),
) -> Response:
    """Neighbours of a corpus row, the row itself left out and echoed as ``row``."""
    run = service.pick(model, pooling)
    service.check_row(run, row_id)
    where = parse_filter_param(filter) | {
        n: v for n, v in (("label", label), ("split", split)) if v is not None
    }
    ask = await service.ask(run, k, where, dedup)
    hits = await run.batcher.call(run.searcher.similar, row_id, k, None, ask)
    row = run.searcher.rows.records([row_id])[0]
    return json_response({"row": row, "results": [hits], "model": run.model, "pooling": run.pooling})


def parse_filter_param(text: str | None) -> dict[str, Any]:
    """A GET route's ``filter``: a JSON object, as /search takes it."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise RequestError(422, f"filter is not valid JSON ({error}).", "filter") from None
    if not isinstance(value, dict):
        raise RequestError(422, 'filter must be a JSON object, e.g. {"lang": "es"}.', "filter")
    return value


@router.get("/items", response_model=ItemsResponse, responses=ERRORS)
async def items(
    service: Served,
    row_ids: str = Query(description="Comma-separated row ids, e.g. 1,2,3."),
    model: str | None = None,
    pooling: str | None = None,
) -> dict[str, Any]:
    parts = [part.strip() for part in row_ids.split(",") if part.strip()]
    if not parts or not all(ROW_ID.fullmatch(part) for part in parts):
        raise RequestError(422, f"row_ids must be comma-separated whole numbers (got {row_ids[:80]!r}).",
                           "row_ids")  # fmt: skip
    return {"items": service.items(service.pick(model, pooling), [int(p) for p in parts])}


@router.get("/map", include_in_schema=False)
async def map_points(service: Served, model: str | None = None, pooling: str | None = None) -> Response:
    """The run's map for the page: serialised once per file version (100,000 points: megabytes)."""
    return Response(service.map_points(service.pick(model, pooling)), media_type="application/json")


@router.get("/v1/models")
async def models(service: Served) -> dict[str, Any]:
    """OpenAI's model list: the served runs' models."""
    data = [{"id": run.model, "object": "model", "owned_by": "encajes"} for run in service.runs]
    return {"object": "list", "data": data}


TOKEN_IDS = (
    "'input' holds token ids, which are another tokenizer's numbers (OpenAI's tiktoken): this server "
    "tokenizes with its own model, so send the texts themselves. LangChain: "
    "OpenAIEmbeddings(..., check_embedding_ctx_length=False) sends text."
)


def embedding_texts(request: EmbeddingRequest, dim: int) -> str | list[str]:
    """The request's texts, after refusing what OpenAI's API takes but this model cannot honour: token
    ids of another tokenizer, and shortened vectors (``dimensions`` other than the run's)."""
    given = request.input
    if not isinstance(given, str) and any(not isinstance(item, str) for item in given):
        raise RequestError(422, TOKEN_IDS, "input")
    if request.dimensions is not None and request.dimensions != dim:
        said = f"dimensions={request.dimensions}: this model was not trained for shortened vectors"
        raise RequestError(422, f"{said}; leave dimensions out (its vectors have {dim}).", "dimensions")
    return given  # type: ignore[return-value]


@router.post("/v1/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
async def embeddings(request: EmbeddingRequest, service: Served) -> Response:
    """OpenAI-shaped embeddings: L2-normalised, with the run's prefix, pooling, max length and dtype."""
    run = service.pick(request.model, request.pooling)
    texts = service.check_texts(embedding_texts(request, run.encoder.dim), "input")
    job = await run.encode(texts)
    assert job.vectors is not None
    vectors = embedding_payload(job.vectors, request.encoding_format)
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": run.model,
        "usage": {"prompt_tokens": job.tokens, "total_tokens": job.tokens},
    }
    return json_response(body)
