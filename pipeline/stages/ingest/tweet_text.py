"""Tweet text conventions, pure: the normalisation TweetEval and twitter-roberta use (``--normalize
tweets``), and the key under which two texts count as the same tweet (retweets, copies) when train and
test are checked for overlap."""

from __future__ import annotations

import re

MENTION = re.compile(r"(?<![\w@])@\w+")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
RETWEET = re.compile(r"^rt @\w+:?\s*")
NORMALIZATIONS = ("none", "tweets")


def normalize_tweet(text: str) -> str:
    """'@ana mira https://t.co/x' -> '@user mira http' (user mentions and links carry no meaning a
    model can learn from, and they identify people)."""
    return URL.sub("http", MENTION.sub("@user", text))


def duplicate_key(text: str) -> int:
    """A key equal for texts that differ only in case, whitespace, links or a leading 'RT @x:'. Python's
    string hash: compared within one process only, never stored."""
    text = text.casefold()
    if "http" in text or "www." in text:
        text = URL.sub("", text)
    text = " ".join(text.split())
    if text.startswith("rt @"):
        text = RETWEET.sub("", text)
    return hash(text)
