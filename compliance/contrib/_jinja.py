"""The ``compliance_notices()`` Jinja global for ASGI apps (Starlette's ``Jinja2Templates``)."""

from __future__ import annotations

import jinja2
from markupsafe import Markup

from compliance.contrib.templates import render_shared

__all__ = ["compliance_notices"]


@jinja2.pass_context
def compliance_notices(
    context: jinja2.runtime.Context,
    lang: str | None = None,
    placement: str | None = None,
    css: bool = False,
    nonce: str | None = None,
) -> Markup:
    """``{{ compliance_notices() }}``: the reader's notices, here in the page (pass ``lang``
    the page's language). Needs ``request`` in the template context, as Starlette's
    ``TemplateResponse`` provides."""
    request = context.get("request")
    if request is None:
        return Markup("")
    state = request.scope.setdefault("state", {})
    html = render_shared(state, lang=lang, placement=placement, css=css, nonce=nonce)
    return Markup(html)  # built escaped by the renderer
