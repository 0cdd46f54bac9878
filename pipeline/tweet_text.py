"""Tweet text conventions, pure: the normalisation TweetEval and twitter-roberta use (``--normalize
tweets``), and the key under which two texts count as the same tweet (retweets, copies) when train and
test are checked for overlap."""

from __future__ import annotations

import hashlib
import re

MENTION = re.compile(r"(?<![\w@])@\w+")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
SPACES = re.compile(r"\s+")
NORMALIZATIONS = ("none", "tweets")


def normalize_tweet(text: str) -> str:
    """'@ana mira https://t.co/x' -> '@user mira http' (user mentions and links carry no meaning a
    model can learn from, and they identify people)."""
    return URL.sub("http", MENTION.sub("@user", text))


def duplicate_key(text: str) -> int:
    """A 64-bit key equal for texts that differ only in case, whitespace, links or a leading 'RT @x:'."""
    text = URL.sub("", text.casefold())
    text = re.sub(r"^rt @\w+:?\s*", "", text.strip())
    text = SPACES.sub(" ", text).strip()
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True
    )
