"""The settings of search and serving: how ``encajes search`` asks and what one request to ``encajes
serve`` may cost. Declared like every other setting (``pipeline.core.settings``), so the CLI's options
come from these fields."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.settings import check_fields, option

WHERE_EXAMPLES = "'lang=es', 'created_at>=2021-06-01', 'author in (el_pais, abc_es)', 'retweet=false'"


@dataclass(frozen=True)
class SearchSettings:
    """How ``encajes search`` asks beyond its query: how many distinct hits, from which rows."""

    k: int = option(10, "Distinct hits per query.", "-k", "--k", "--top-k", min=1)
    where: tuple[str, ...] = option(
        (),
        f"Only rows where a kept field matches: {WHERE_EXAMPLES}, 'place is missing'. Repeat: all hold.",
        "--where",
    )
    dedup: float = option(
        0.95,
        "Fold hits within this cosine of a better hit into it, shown as '+N similar' (retweets, copies); "
        "0 turns it off.",
        min=0,
        max=1,
    )
    min_score: float | None = option(None, "Only hits with at least this cosine.", min=-1, max=1)
    offset: int = option(0, "Skip this many distinct hits: the next page.", min=0)
    positive: tuple[str, ...] = option(
        (), "More like this corpus row (row_id or id); repeatable, the query is their mean.", "--positive"
    )
    negative: tuple[str, ...] = option(
        (), "Less like this corpus row (with --positive): its vector is subtracted.", "--negative"
    )
    api_key: str | None = option(
        None,
        "Require 'Authorization: Bearer KEY' on every route but /health and the page (OpenAI clients send "
        "it). Default: the environment variable ENCAJES_API_KEY, which keeps it out of the process list.",
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class ServeSettings:
    """What one request to ``encajes serve`` may cost, and how concurrent requests share the encoder."""

    host: str = option(
        "127.0.0.1", "Address to listen on; 0.0.0.0 exposes the server to your network (see --api-key)."
    )
    port: int = option(8000, "Port to listen on (0: any free port).", min=0, max=65535)
    max_k: int = option(100, "Most neighbours one query may ask for.", min=1)
    max_texts: int = option(
        2048, "Most texts (queries or inputs) in one request (2,048: as many as OpenAI's API takes).", min=1
    )
    max_text_chars: int = option(4000, "Longest text accepted, in characters.", min=1)
    max_row_ids: int = option(1000, "Most row ids one /items request may ask for.", min=1)
    batch_wait_ms: float = option(
        2.0,
        "How long a forward pass that is not full waits for concurrent requests to join it.",
        min=0,
        max=1000,
    )
    max_queued_texts: int = option(
        4096, "Texts waiting for the encoder beyond which requests get 503 (busy) at once.", min=1
    )
    api_key: str | None = option(
        None,
        "Require 'Authorization: Bearer KEY' on every route but /health and the page (OpenAI clients send "
        "it). Default: the environment variable ENCAJES_API_KEY, which keeps it out of the process list.",
    )

    __post_init__ = check_fields
