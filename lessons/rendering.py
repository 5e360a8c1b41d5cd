"""Lesson Markdown → HTML that is safe to show: diagrams inlined as SVG, then everything sanitised with nh3."""
from __future__ import annotations

import itertools
import re

import markdown
import nh3

from .sources import LessonSourceError, LessonSource

# Bump when the rendering or the sanitiser policy changes: it is part of every lesson's source hash, so the next
# `manage.py lessons load` re-renders all lessons instead of reporting them unchanged.
RENDERER_VERSION = "2"

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]

# A diagram is written as a Markdown image of a .svg file beside lesson.md, on a line of its own:
#   ![Containers share the host kernel](containers-vs-vms.svg)
# It is inlined (so it scales with the text and needs no extra request) as a <figure> with the alt text as caption.
DIAGRAM_LINE = re.compile(r"^!\[(?P<caption>[^\]]+)\]\((?P<file>[A-Za-z0-9._-]+\.svg)\)\s*$")

HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "figcaption",
    "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "samp", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}
# Drawing elements only: no <script>, <style>, <foreignObject>, <use>, <image>, <a> or animation, which could run
# script, pull in outside content or pass a link through inside an SVG.
SVG_TAGS = {"svg", "g", "title", "desc", "defs", "marker", "rect", "circle", "ellipse", "line", "polyline", "polygon",
            "path", "text", "tspan"}
_PAINT = {"fill", "stroke", "stroke-width", "stroke-dasharray", "stroke-linecap", "stroke-linejoin", "opacity",
          "fill-opacity", "stroke-opacity", "transform"}
_TEXT = {"x", "y", "dx", "dy", "text-anchor", "dominant-baseline", "font-size", "font-weight", "font-family",
         "font-style", "letter-spacing"}
ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"align"}, "th": {"align"},
    "ol": {"start"},
    "svg": {"viewBox", "width", "height", "xmlns", "role", "aria-label", "preserveAspectRatio"} | _PAINT | _TEXT,
    "g": _PAINT | _TEXT,
    "marker": {"id", "viewBox", "markerWidth", "markerHeight", "refX", "refY", "orient", "markerUnits"},
    "rect": {"x", "y", "width", "height", "rx", "ry"} | _PAINT,
    "circle": {"cx", "cy", "r"} | _PAINT,
    "ellipse": {"cx", "cy", "rx", "ry"} | _PAINT,
    "line": {"x1", "y1", "x2", "y2", "marker-start", "marker-end"} | _PAINT,
    "polyline": {"points", "marker-start", "marker-end"} | _PAINT,
    "polygon": {"points"} | _PAINT,
    "path": {"d", "marker-start", "marker-end"} | _PAINT,
    "text": _TEXT | _PAINT,
    "tspan": _TEXT | _PAINT,
}
URL_SCHEMES = {"http", "https", "mailto"}
# SVG attribute values are drawing data: colours, numbers, path commands, `url(#marker-id)`. Anything else (another
# url(), an entity trick, a colon) is dropped so a value can never reach out of the page.
_SAFE_SVG_VALUE = re.compile(r"^(?:url\(#[A-Za-z][\w-]*\)|[\w\s#.,%()+-]*)$")
_SVG_VALUE_ATTRIBUTES = {"fill", "stroke", "marker-start", "marker-end", "transform"}


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag in SVG_TAGS and attribute in _SVG_VALUE_ATTRIBUTES:
        if "url(" in value and not re.fullmatch(r"url\(#[A-Za-z][\w-]*\)", value.strip()):
            return None
        return value if _SAFE_SVG_VALUE.match(value) else None
    return value


def sanitise(html: str) -> str:
    """Keeps prose, code, tables and a drawing-only subset of SVG; drops scripts, event handlers and unsafe URLs."""
    return nh3.clean(
        html,
        tags=HTML_TAGS | SVG_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"table": {"class": "table table-sm"}},
        strip_comments=True,
    )


def _inline_diagrams(lesson: LessonSource) -> str:
    """Replaces each diagram line with a raw-HTML <figure> holding the SVG file's markup."""
    out = []
    for number, line in enumerate(lesson.markdown.splitlines(), start=lesson.markdown_first_line):
        match = DIAGRAM_LINE.match(line)
        if not match:
            out.append(line)
            continue
        svg_path = lesson.folder / match["file"]
        if not svg_path.is_file():
            raise LessonSourceError(lesson.lesson_path, number, f"diagram {match['file']} not found beside lesson.md")
        svg = svg_path.read_text(encoding="utf-8").strip()
        svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
        if not svg.startswith("<svg"):
            raise LessonSourceError(svg_path, 1, "a diagram file must hold one <svg> element")
        # Blank lines would end Markdown's raw-HTML block early, so the SVG is kept on lines with content only.
        svg = "\n".join(part for part in svg.splitlines() if part.strip())
        out.append(f'\n<figure>\n{svg}\n<figcaption>{_escape(match["caption"])}</figcaption>\n</figure>\n')
    return "\n".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_to_html(text: str) -> str:
    return markdown.markdown(text, extensions=MARKDOWN_EXTENSIONS, output_format="html")


# A code block wider than the column scrolls sideways, which a keyboard can only do once the block takes the focus:
# each <pre> becomes a focusable, named region. Added after sanitising (which lets no attribute through on <pre>), so
# these fixed attributes are the only ones a <pre> of a lesson can carry.
_PRE = re.compile(r"<pre>")


def code_blocks_focusable(html: str) -> str:
    numbers = itertools.count(1)
    return _PRE.sub(lambda _: f'<pre tabindex="0" role="region" aria-label="Code example {next(numbers)}">', html)


def lesson_html(lesson: LessonSource) -> str:
    """The lesson body as sanitised HTML, ready to be marked safe in a template."""
    return code_blocks_focusable(sanitise(markdown_to_html(_inline_diagrams(lesson))))
