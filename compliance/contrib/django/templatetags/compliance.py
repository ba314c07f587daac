"""``{% load compliance %}{% compliance_notices %}``: the reader's notices where the
template puts them; the middleware then does not inject those notices again."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from compliance.contrib.templates import render_shared

register = template.Library()


@register.simple_tag(takes_context=True)
def compliance_notices(
    context: Any, lang: str | None = None, placement: str | None = None, css: bool = False
) -> SafeString:
    """``{% compliance_notices %}``, or ``{% compliance_notices lang="en" %}`` with the
    page's language, or ``placement="after_heading"`` for only those notices; ``css=True``
    adds the default style sheet (with ``request.csp_nonce`` when django-csp sets one).
    Needs the ``request`` context processor; renders nothing without the middleware."""
    request = context.get("request")
    if request is None:
        return mark_safe("")
    nonce = getattr(request, "csp_nonce", None) if css else None
    html = render_shared(
        request.META, lang=lang, placement=placement, css=css, nonce=str(nonce) if nonce else None
    )
    if html:
        # The page holds this reader's notices now: Django's response cache (cache_page,
        # the per-site cache), between the view and the middleware, must not keep it for
        # the next reader (outside the jurisdiction, they would get the notices; inside,
        # the middleware would put them in a second time). This is its "do not store".
        request._cache_update_cache = False
    return mark_safe(html)  # built escaped by the renderer
