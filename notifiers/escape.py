"""How user text is made safe in the formats the notifiers write: one rule per format, each in one function here.

A notification's subject and body carry names, titles and notes typed by people Sojourn does not control. The
engine's own formats (CSV, HTML, Mermaid, charts) have their rules in `engine.domain.escape`.
"""

from __future__ import annotations

import unicodedata


def slack_text(text: str) -> str:
    """Text for a Slack (or Microsoft Teams) message `text`, shown as written.

    Slack reads `<...>` as markup: `<!channel>` notifies everyone in the channel, `<http://evil|click here>` is a
    link disguised as other text, `<@U123>` mentions a user. Slack's rule is to escape `&`, `<` and `>` as
    `&amp;`, `&lt;` and `&gt;` (and only those), which Slack and Teams both show as the characters themselves.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def header_text(text: str) -> str:
    """Text for one email header value (a subject, a display name), on one line.

    A line break in a header value would end the header and start another (`Bcc:` injection); Python's email
    package refuses such values, which would lose the message. So every line break, tab and other control character
    becomes a space and runs of spaces become one: a multi-line subject is still delivered, on one line.
    """
    visible = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    return " ".join(visible.split())
