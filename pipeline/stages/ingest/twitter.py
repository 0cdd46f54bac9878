"""Twitter's own fields, kept without flags when the files hold tweets: when it was posted, who posted it,
its language, and whether it is a retweet, a reply or a quote, from API v1.1 records and v2 records alike.

v1.1 says so with ``user.screen_name``, ``retweeted_status`` (or a text starting ``RT @``),
``in_reply_to_status_id(_str)`` and ``is_quote_status``/``quoted_status``; v2 with ``author_id`` (a
username only through the page's ``includes.users``) and ``referenced_tweets`` types ``retweeted``,
``replied_to`` and ``quoted``. Pure: records in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# keys that only a tweet has (a plain JSON file with a text and a date has none of them)
TWEET_KEYS = (
    "author_id",
    "referenced_tweets",
    "edit_history_tweet_ids",
    "retweeted_status",
    "in_reply_to_status_id",
    "in_reply_to_status_id_str",
    "is_quote_status",
)
TWEET_KINDS = {
    "created_at": "timestamp",
    "author": "string",
    "lang": "string",
    "retweet": "boolean",
    "reply": "boolean",
    "quote": "boolean",
}


def is_tweet(record: dict[str, Any]) -> bool:
    """A v1.1 or v2 tweet, told by keys no other record has (a ``user`` with a ``screen_name`` counts)."""
    user = record.get("user")
    if isinstance(user, dict) and "screen_name" in user:
        return True
    return any(key in record for key in TWEET_KEYS)


def page_users(page: dict[str, Any]) -> dict[str, str] | None:
    """A v2 page's ``includes.users`` as author id -> username, or None when it has none."""
    includes = page.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    if not isinstance(users, list):
        return None
    return {
        str(user["id"]): str(user["username"])
        for user in users
        if isinstance(user, dict) and user.get("id") is not None and user.get("username") is not None
    }


@dataclass(slots=True)
class TweetFields:
    """One tweet's fields as read (``created_at`` still raw: it is parsed and checked like any kept field)."""

    created_at: Any
    author: str | None
    lang: Any
    retweet: bool
    reply: bool
    quote: bool


def tweet_fields(record: dict[str, Any], users: dict[str, str] | None = None) -> TweetFields:
    """A v1.1 or v2 record -> its fields; ``users``: the page's author id -> username (v2)."""
    get = record.get
    user = get("user")
    if isinstance(user, dict) and user.get("screen_name") is not None:
        author: str | None = str(user["screen_name"])
    elif (author_id := get("author_id")) is not None:
        author = (users or {}).get(str(author_id), str(author_id))
    else:
        author = None
    refs = get("referenced_tweets")
    types = {ref.get("type") for ref in refs if isinstance(ref, dict)} if isinstance(refs, list) else ()
    own = get("full_text") or get("text")
    retweet = get("retweeted_status") is not None or "retweeted" in types
    reply = get("in_reply_to_status_id") is not None or get("in_reply_to_status_id_str") is not None
    quote = bool(get("is_quote_status")) or get("quoted_status") is not None or "quoted" in types
    return TweetFields(
        get("created_at"),
        author,
        get("lang"),
        retweet or (isinstance(own, str) and own.startswith("RT @")),
        reply or "replied_to" in types,
        quote,
    )
