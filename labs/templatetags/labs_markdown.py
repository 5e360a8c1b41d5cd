"""Template filters for lab text written in Markdown."""
from django import template
from django.utils.safestring import mark_safe

from labs.rendering import inline_html

register = template.Library()


@register.filter
def inline_markdown(text: str) -> str:
    """Sanitised inline HTML from short Markdown (nh3 strips anything unsafe, so the result may be marked safe)."""
    return mark_safe(inline_html(text or ""))
