"""Render the reader's notices where a template puts them (shared by every integration).

A template helper (Django's ``{% compliance_notices %}``, the Jinja global
``compliance_notices()`` in Flask and Starlette) calls :func:`render_shared` with the state
the request shares with the middleware: ``environ`` under WSGI, ``scope["state"]`` under
ASGI, ``request.META`` in Django. There the middleware's response core left the decision and
the *rendered* set, and it does not inject the notices whose rule ids are in that set; once
it has read the start of the body (a streamed page), the notices it took to inject are in
the *injected* set, which the helper leaves out. So a notice is never shown twice; the
helper renders each notice at most once per request too.
"""

from __future__ import annotations

from collections.abc import Collection, MutableMapping, MutableSet
from typing import Any

__all__ = ["render_notices", "render_shared"]


def render_notices(
    decision: Any,
    rendered: MutableSet[str] | None,
    *,
    lang: str | None = None,
    placement: str | None = None,
    css: bool = False,
    nonce: str | None = None,
    injected: Collection[str] = (),
    by_reader: MutableSet[str] | None = None,
) -> str:
    """The ``<aside class="compliance-notice">`` markup of every notice in ``decision`` not
    yet in ``rendered`` nor ``injected`` (those the middleware injects: in a streamed page
    it may have taken them before the template got here), in priority order, adding their
    rule ids to ``rendered``.

    ``lang``: the page's language (as in ``<html lang>``), chosen first among a notice's
    locales, as the middleware does; else the reader's languages decide. ``placement``:
    only notices with that placement (``body_start``, ``body_end``, ``marker``,
    ``after_heading``). ``css``: put the library's default notice style sheet before them
    (with the page's CSP ``nonce``), as the middleware's ``css=True`` does for the notices
    it injects. No decision (the middleware is not installed, or it failed open): an empty
    string. The markup is already escaped; frameworks mark it safe. ``by_reader``: gets the
    rule ids of the notices rendered in a locale the reader's languages (not ``lang``) chose
    among several, for which the response must vary on ``Accept-Language``.
    """
    if decision is None:
        return ""
    parts = []
    for notice in decision.notices:
        if placement is not None and notice.placement != placement:
            continue
        if notice.rule_id in injected:
            continue
        if rendered is not None:
            if notice.rule_id in rendered:
                continue
            rendered.add(notice.rule_id)
        choice = decision.locale_choice(notice, lang or None)
        if by_reader is not None and len(notice.locales) > 1 and choice.reason != "page":
            by_reader.add(notice.rule_id)
        parts.append(notice.html(choice.locale))
    if css and parts:
        from compliance.decision import style_element

        parts.insert(0, style_element(nonce))
    return "".join(parts)


def render_shared(
    state: MutableMapping[str, Any],
    *,
    lang: str | None = None,
    placement: str | None = None,
    css: bool = False,
    nonce: str | None = None,
) -> str:
    """:func:`render_notices` for the request whose shared ``state`` (the WSGI environ,
    ASGI ``scope["state"]``, Django's ``request.META``) holds the middleware's
    ``compliance.decision``, recording what it renders in ``compliance.rendered`` (and in
    ``compliance.rendered-by-reader`` the notices whose locale the reader's languages chose,
    so the middleware's ``Vary`` says so)."""
    from compliance.core import STATE_BY_READER, STATE_INJECTED, STATE_RENDERED, read_decision

    rendered = state.setdefault(STATE_RENDERED, set())
    return render_notices(
        read_decision(state),
        rendered,
        lang=lang,
        placement=placement,
        css=css,
        nonce=nonce,
        injected=state.get(STATE_INJECTED, ()),
        by_reader=state.setdefault(STATE_BY_READER, set()),
    )
