"""Step Markdown → safe HTML, with ```run code blocks turned into click-to-run commands for the terminal."""
from __future__ import annotations

import html
import re

import markdown
import nh3

# ```run fences become <pre class="sc-run" data-run> blocks: the lab page puts a button on them that types the
# command into the learner's terminal. Other fences stay plain code.
RUN_FENCE = re.compile(r"^```run[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TAGS = {"a", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "hr", "i", "kbd", "li", "ol", "p", "pre",
        "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "details", "summary", "span", "div"}
ATTRIBUTES = {"a": {"href", "title"}, "pre": {"class", "data-run"}, "code": {"class"}, "td": {"align"},
              "th": {"align"}, "ol": {"start"}}


def _run_block(match: re.Match) -> str:
    code = match.group("code").rstrip("\n")
    return f'\n<pre class="sc-run" data-run="{html.escape(code, quote=True)}"><code>{html.escape(code)}</code></pre>\n'


def instructions_html(markdown_text: str) -> str:
    text = RUN_FENCE.sub(_run_block, markdown_text)
    rendered = markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    return nh3.clean(rendered, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer")


def inline_html(markdown_text: str) -> str:
    """Short Markdown shown inline (a hint after "Hint N:", a lab summary): one paragraph loses its <p> wrapper."""
    rendered = instructions_html(markdown_text).strip()
    if rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<p>") == 1:
        rendered = rendered[3:-4]
    return rendered
