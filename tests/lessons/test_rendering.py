"""Sanitising lesson HTML: no script can get through, drawings can."""
import pytest

from lessons.rendering import lesson_html, markdown_to_html, sanitise
from lessons.services import lessons_load
from lessons.models import Lesson
from lessons.sources import read_lesson

HOSTILE = """\
## Hostile lesson

<script>alert('xss')</script>

<img src="x.png" onerror="alert(1)">

[click me](javascript:alert(1)) and <a href="javascript:alert(2)">raw link</a> and <a href="JaVaScRiPt:alert(3)">mixed</a>

<div onclick="alert(4)" style="position:fixed">boxed</div>

<iframe src="https://evil.example"></iframe>

<svg viewBox="0 0 10 10" onload="alert(5)"><script>alert(6)</script><a href="javascript:alert(7)"><rect width="5" height="5" fill="url(javascript:alert(8))"/></a><foreignObject><p onmouseover="alert(9)">x</p></foreignObject></svg>

[safe link](https://docs.aws.amazon.com/lambda/)
"""


def test_script_tags_event_handlers_and_javascript_links_are_removed():
    html = sanitise(markdown_to_html(HOSTILE))

    lowered = html.lower()
    assert "<script" not in lowered and "alert('xss')" not in lowered
    assert "onerror" not in lowered and "onclick" not in lowered and "onload" not in lowered
    assert "onmouseover" not in lowered
    assert "javascript:" not in lowered
    assert "<iframe" not in lowered and "style=" not in lowered and "foreignobject" not in lowered


def test_safe_content_survives_sanitising():
    html = sanitise(markdown_to_html(HOSTILE))

    assert '<a href="https://docs.aws.amazon.com/lambda/" rel="noopener noreferrer">safe link</a>' in html
    assert "<h2>Hostile lesson</h2>" in html
    assert '<rect width="5" height="5">' in html  # the drawing stays, minus its hostile fill


def test_a_diagram_file_is_inlined_as_an_svg_figure_with_its_caption(content):
    svg = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50" role="img" aria-label="Stack">
  <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" orient="auto"><path d="M0 0 L10 5 L0 10 z"/></marker></defs>

  <rect x="1" y="1" width="40" height="20" rx="3" fill="#cfe2ff" stroke="#495057" onmouseover="alert(1)"/>
  <line x1="41" y1="10" x2="80" y2="10" stroke="#495057" marker-end="url(#arrow)"/>
  <text x="20" y="15" text-anchor="middle">Kernel</text>
</svg>
"""
    folder = content.lesson("01-intro", body="Before.\n\n![Containers share the kernel](stack.svg)\n\nAfter.\n",
                            files={"stack.svg": svg})

    html = lesson_html(read_lesson(folder))

    assert '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50" role="img" aria-label="Stack">' in html
    assert 'marker-end="url(#arrow)"' in html and '<marker id="arrow" viewBox="0 0 10 10"' in html
    assert '<text x="20" y="15" text-anchor="middle">Kernel</text>' in html
    assert "<figcaption>Containers share the kernel</figcaption>" in html
    assert "onmouseover" not in html
    assert html.index("Before.") < html.index("<svg") < html.index("After.")


@pytest.mark.django_db
def test_an_imported_hostile_lesson_is_stored_sanitised(content):
    content.lesson("01-hostile", body=HOSTILE)

    lessons_load(content_dir=content.root)

    body = Lesson.objects.get(slug="hostile").body_html.lower()
    assert "<script" not in body and "onerror" not in body and "javascript:" not in body
