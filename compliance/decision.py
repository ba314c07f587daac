"""The typed seam between the engine and the response core (DESIGN.md section 1.4).

A :class:`Decision` says what applies to one reader and one request: the notices (each
renderable in any of its locales), at most one block, the parts of the page to withhold,
extra response headers, the ``Vary``/``Cache-Control`` consequences, and a trace. The
response core imports this module and :class:`EngineProtocol`, never the engine or the rule
loader: the matches render through a :class:`Renderer` that the engine supplies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html as _html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple, Protocol, TypeVar

from .cache import BoundedCache, approximate_size
from .geo import Location
from .html.placements import Placement
from .http import normalize_host, normalize_path, url_host
from .locales import LocaleChoice, choose_locale

__all__ = [
    "DEFAULT_CSS",
    "BlockMatch",
    "Decision",
    "EngineProtocol",
    "NoticeMatch",
    "Placement",
    "RenderKind",
    "Renderer",
    "Request",
    "TraceEntry",
    "TranslationStatus",
    "WithholdMatch",
    "normalize_path",
    "style_element",
]

T = TypeVar("T")
# Room for the five entries (choices, localized, snippets, vary, variant) of every decision
# the engine's cache holds (8,192) in one page language: about 1.5 KB each as estimated (the
# snippets counted in full, though the renderer's cache shares them; about 450 bytes
# measured). A miss makes the notice path render its snippets again (about 50 µs).
_DERIVED_ENTRIES: Final = 6 * 8192
_DERIVED_BYTES: Final = 64 << 20
_DECISION_SHARE: Final = 512
"""Bytes each entry of :data:`_derived` counts for the decision it holds: entries come four
or five to a decision and page language (choices, localized, snippets, vary, variant), and
a decision is about 2 KiB with a notice; an entry may be the last to hold it."""
_MEMO_LANGUAGE: Final = 35
"""Longest page language a decision remembers anything for (the longest language range
:mod:`~compliance.locales` reads): no well-formed tag people use is longer."""


TranslationStatus = Literal["original", "reviewed", "unreviewed"]
"""Whether a locale's text is the one copied from a source, or a translation of it."""

RenderKind = Literal[
    "notice-html",
    "notice-text",
    "block-html",
    "block-json",
    "block-text",
    "withhold-html",
    "withhold-text",
]
"""What a :class:`Renderer` is asked for."""

DEFAULT_CSS = (
    ".compliance-notice{box-sizing:border-box;margin:1em auto;padding:.75em 1em;max-width:60em;"
    "border:1px solid #c9a227;border-left-width:.4em;background:#fff8e1;color:#222;"
    "font:inherit;line-height:1.45}"
    ".compliance-notice p{margin:.4em 0}"
)
"""The optional default style of injected notices."""


def style_element(nonce: str | None) -> str:
    """The optional default CSS, with the page's CSP nonce when there is one.

    >>> style_element('a"b')[:25]
    '<style nonce="a&quot;b">.'
    """
    attribute = f' nonce="{_html.escape(nonce)}"' if nonce else ""
    return f"<style{attribute}>{DEFAULT_CSS}</style>"


class Renderer(Protocol):
    """Renders one rule's message (escaped or sanitized HTML, or plain text) in a locale.

    The engine's compiled rules implement it; a renderer raises ``KeyError`` for a locale the
    message has no text in.
    """

    def render(self, kind: RenderKind, locale: str) -> str: ...


class Request(NamedTuple):
    """What the engine needs to know about one request, already normalised by the caller
    (:meth:`of` does it from raw values).

    ``host`` is as :func:`compliance.http.normalize_host` leaves it; ``path`` is the URL
    path, percent-decoded and normalised (``/a/../b`` is ``/b``); ``at`` defaults to now.
    The engine bounds every field before using it as a cache key. An immutable tuple: it
    hashes in C, which keeps a repeat reader's decision one cheap lookup.
    """

    host: str = ""
    path: str = "/"
    accept_language: str | None = None
    tags: frozenset[str] = frozenset()
    at: dt.date | dt.datetime | None = None
    page_language: str | None = None

    @classmethod
    def of(
        cls,
        *,
        host: str | None = None,
        path: str | None = None,
        accept_language: str | None = None,
        tags: frozenset[str] = frozenset(),
        at: dt.date | dt.datetime | None = None,
        page_language: str | None = None,
    ) -> Request:
        """A request from raw values: ``host`` as the ``Host`` header has it, ``path``
        percent-encoded as sent (the ASGI ``raw_path``, WSGI's ``RAW_URI``). WSGI's
        ``PATH_INFO`` is decoded already: give ``compliance.http.url_path(SCRIPT_NAME +
        PATH_INFO)``, or ``/a%2541`` (``PATH_INFO`` ``/a%41``) is decoded twice, to ``/aA``.

        >>> request = Request.of(host="News.Example.:443", path="/a/%2E%2E/news/")
        >>> request.host, request.path
        ('news.example', '/news/')
        """
        return cls(
            normalize_host(host),
            normalize_path(path or "/"),
            accept_language,
            tags,
            at,
            page_language,
        )


class EngineProtocol(Protocol):
    """What the response core needs from an engine: a location for an address, and a
    pure decision for a location and a request."""

    def locate(self, ip: str | None) -> Location: ...

    def decide(self, *, location: Location, request: Request) -> Decision: ...


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """Whether one rule applied, and if not, the first reason why not."""

    rule_id: str
    applied: bool
    reason: str | None

    def __str__(self) -> str:
        return f"{self.rule_id}: " + ("applied" if self.applied else f"skipped, {self.reason}")


def _status(
    locale: str, original: str | None, translations: Mapping[str, TranslationStatus]
) -> TranslationStatus | None:
    if original is None:
        return None
    if locale == original:
        return "original"
    return translations.get(locale, "unreviewed")


@dataclass(frozen=True, eq=False)
class NoticeMatch:
    """A notice that applies; render it in any of its locales."""

    rule_id: str
    placement: Placement
    priority: int
    locale: str
    """The locale chosen for the decision's reader and request (no page language)."""
    locale_reason: str
    """Which step chose :attr:`locale`: page, accept-language, jurisdiction or default."""
    locales: tuple[str, ...]
    """Every locale this notice has a text for."""
    default_locale: str
    _renderer: Renderer = field(repr=False)
    original: str | None = None
    """The locale whose text is copied verbatim from a source; None when not stated."""
    translations: Mapping[str, TranslationStatus] = field(default_factory=dict, repr=False)

    def html(self, locale: str | None = None) -> str:
        """The ``<aside class="compliance-notice">`` markup in ``locale`` (default: chosen)."""
        return self._renderer.render("notice-html", locale or self.locale)

    def text(self, locale: str | None = None) -> str:
        """The notice as plain text in ``locale`` (default: the chosen one)."""
        return self._renderer.render("notice-text", locale or self.locale)

    def translation_status(self, locale: str | None = None) -> TranslationStatus | None:
        """``"original"`` for the text copied from a source, ``"reviewed"`` or
        ``"unreviewed"`` for a translation; None when the rule does not say which text is
        the original."""
        return _status(locale or self.locale, self.original, self.translations)


@dataclass(frozen=True, eq=False)
class BlockMatch:
    """A block that applies: answer 451 with an explanation, do not call the application."""

    rule_id: str
    status: int
    blocked_by: str
    """The URL of who implements the block, as written in the rule."""
    locale: str
    _renderer: Renderer = field(repr=False)
    link_header: str = ""
    """The RFC 7725 ``Link`` header value naming who implements the block (host in
    punycode: header values are Latin-1)."""
    original: str | None = None
    translations: Mapping[str, TranslationStatus] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.link_header:
            object.__setattr__(self, "link_header", f'<{self.blocked_by}>; rel="blocked-by"')

    def html(self) -> str:
        """A complete HTML page explaining the block."""
        return self._renderer.render("block-html", self.locale)

    def json(self) -> str:
        """The explanation as a JSON document."""
        return self._renderer.render("block-json", self.locale)

    def text(self) -> str:
        """The explanation as plain text."""
        return self._renderer.render("block-text", self.locale)

    def translation_status(self, locale: str | None = None) -> TranslationStatus | None:
        """As :meth:`NoticeMatch.translation_status`."""
        return _status(locale or self.locale, self.original, self.translations)


@dataclass(frozen=True, eq=False)
class WithholdMatch:
    """Parts of the page a rule withholds: elements marked with one of :attr:`marks` in
    ``data-compliance-withhold``, and embeds whose URL is on one of :attr:`embeds`."""

    rule_id: str
    marks: tuple[str, ...]
    embeds: tuple[str, ...]
    """Host globs, as written in the rule (``*`` any run of characters)."""
    locale: str
    locale_reason: str
    locales: tuple[str, ...]
    """Locales the placeholder has a text for (empty with ``placeholder: false``)."""
    default_locale: str
    _renderer: Renderer = field(repr=False)
    _embed_host: Callable[[str], bool] = field(repr=False)
    original: str | None = None
    translations: Mapping[str, TranslationStatus] = field(default_factory=dict, repr=False)

    @property
    def has_placeholder(self) -> bool:
        """False when withheld parts are removed without trace (``placeholder: false``)."""
        return bool(self.locales)

    def translation_status(self, locale: str | None = None) -> TranslationStatus | None:
        """As :meth:`NoticeMatch.translation_status`, for the placeholder's text."""
        return _status(locale or self.locale, self.original, self.translations)

    def embed_host_matches(self, host: str) -> bool:
        """Whether an embed from ``host`` (any case, port or trailing dot) is withheld."""
        return bool(self.embeds) and self._embed_host(normalize_host(host))

    def embed_url_matches(self, url: str) -> bool:
        """Whether an embed with this ``src``/``data``/``srcset`` URL is withheld.

        Relative URLs point at the page's own site and are never withheld by host.

        >>> from compliance.globs import compile_globs
        >>> hosts = compile_globs(["*.rt.com"], host=True)
        >>> w = WithholdMatch("r", (), ("*.rt.com",), "en", "default", (), "en", None, hosts.match)
        >>> w.embed_url_matches("https://Player.RT.com:443/x"), w.embed_url_matches("/rt.com")
        (True, False)
        """
        host = url_host(url)
        return host is not None and self.embed_host_matches(host)

    def placeholder(self, locale: str | None = None) -> str | None:
        """The ``<aside class="compliance-withheld">`` put in place of each withheld element,
        or None when the rule removes without trace."""
        if not self.locales:
            return None
        return self._renderer.render("withhold-html", locale or self.locale)

    def text(self, locale: str | None = None) -> str | None:
        """The placeholder as plain text, or None without a placeholder."""
        if not self.locales:
            return None
        return self._renderer.render("withhold-text", locale or self.locale)


Localized = NoticeMatch | WithholdMatch


def _derived_size(key: tuple[int, str, str | None], entry: tuple[Decision, object]) -> int:
    value = entry[1]
    if isinstance(value, dict):  # snippets: the markup by placement
        size = approximate_size(value) + sum(approximate_size(v) for v in value.values())
    elif isinstance(value, Decision):  # localized: itself, or new notices and the rest shared
        size = 0 if value is entry[0] else 4 * _DECISION_SHARE
    else:
        size = approximate_size(value)
    return approximate_size(key) + size + _DECISION_SHARE


_derived: BoundedCache[tuple[int, str, str | None], tuple[Decision, object]] = BoundedCache(
    _DERIVED_ENTRIES, _DERIVED_BYTES, size=_derived_size
)
"""What decisions remember per page language (see :meth:`Decision.derived`), keyed by the
decision's identity: an entry holds its decision, so no other object can take its id while
the entry lives; one cache for all of them, so the bound holds however many there are."""


@dataclass(frozen=True, eq=False)
class Decision:
    """What applies to one reader and request. Immutable; safe to share between threads."""

    location: Location
    notices: tuple[NoticeMatch, ...]
    block: BlockMatch | None
    headers: Mapping[str, str]
    """Extra response headers from the rules that apply."""
    vary: tuple[str, ...]
    """Request headers the response varies on as decided (the geo header the location came
    from, ``accept-language`` when the reader's languages were consulted). See
    :meth:`vary_for` once the page's language is known."""
    private: bool
    """The page depends on a location derived from the client address, which a shared
    cache cannot key on: send ``Cache-Control: private`` (see the middleware's cache policy)."""
    applied: tuple[str, ...]
    """Ids of every rule whose action takes effect, including header-only rules."""
    withholds: tuple[WithholdMatch, ...] = ()
    """Parts of the page to withhold (empty when a block applies)."""
    accept_language: str | None = field(repr=False, default=None)
    _trace: Callable[[], tuple[TraceEntry, ...]] = field(repr=False, default=tuple)
    needs_subdivision: bool = field(repr=False, default=False)
    """The reader's country is known but not their subdivision, and some rule that would
    otherwise apply to this request names subdivisions of that country: a location that
    knows the subdivision may be decided otherwise. The response core then completes a CDN
    header's country from the engine's geolocator (:func:`compliance.geo.completed`)."""

    def derived(self, kind: str, page_language: str | None, make: Callable[[], T]) -> T:
        """``make()``, remembered with this decision under ``kind`` and the page's
        language: for values that depend on nothing else (the locale choices, snippets,
        vary and localized form; the response core's variant name). A decision is shared
        by every request of the same reader and page, so each is made once; what all
        decisions remember together is bounded in entries and bytes (:data:`_derived`)."""
        key = (id(self), kind, page_language)
        found = _derived.get(key)
        if found is not None and found[0] is self:
            return found[1]  # type: ignore[return-value]
        value = make()
        if len(page_language or "") <= _MEMO_LANGUAGE:
            _derived.set(key, (self, value))
        return value

    def _matches(self) -> tuple[Localized, ...]:
        return (*self.notices, *self.withholds)

    def _choices(self, page_language: str | None) -> tuple[LocaleChoice, ...]:
        """:meth:`locale_choice` of every notice, then every withholding."""
        return self.derived(
            "choices",
            page_language,
            lambda: tuple(self.locale_choice(match, page_language) for match in self._matches()),
        )

    def localized(self, page_language: str | None) -> Decision:
        """This decision with each notice's :attr:`~NoticeMatch.locale` (and reason) the one
        injected into a page in ``page_language``; itself when nothing changes."""
        if not page_language:
            return self

        def make() -> Decision:
            choices = self._choices(page_language)
            notices = tuple(
                notice
                if (notice.locale, notice.locale_reason) == (choice.locale, choice.reason)
                else dataclasses.replace(notice, locale=choice.locale, locale_reason=choice.reason)
                for notice, choice in zip(self.notices, choices, strict=False)
            )
            if all(a is b for a, b in zip(notices, self.notices, strict=True)):
                return self
            return dataclasses.replace(self, notices=notices)

        return self.derived("localized", page_language, make)

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        """For every loaded rule, whether it applied and the first reason it did not.

        Computed on first use: it looks at every rule, which a decision does not.
        """
        return self._trace()

    def locale_choice(self, match: Localized, page_language: str | None) -> LocaleChoice:
        """How the locale of ``match`` is chosen once the page's own language is known."""
        if not page_language:
            return LocaleChoice(match.locale, match.locale_reason)  # type: ignore[arg-type]
        return choose_locale(
            match.locales,
            match.default_locale,
            page_language=page_language,
            accept_language=self.accept_language,
            country=self.location.country,
        )

    def locale_for(self, match: Localized, page_language: str | None) -> str:
        """The locale for ``match`` (a notice or a withholding) once the page's own language
        is known."""
        if not page_language:
            return match.locale
        for position, known in enumerate(self._matches()):
            if known is match:
                return self._choices(page_language)[position].locale
        return self.locale_choice(match, page_language).locale

    def vary_for(self, page_language: str | None) -> tuple[str, ...]:
        """:attr:`vary` once the page's language is known: ``accept-language`` stays only
        when the reader's languages, not the page's, chose a locale."""
        if not page_language or "accept-language" not in self.vary:
            return self.vary
        return self.derived("vary", page_language, lambda: self._vary_for(page_language))

    def _vary_for(self, page_language: str) -> tuple[str, ...]:
        choices = self._choices(page_language)
        consulted = any(
            len(m.locales) > 1 and choice.reason != "page"
            for m, choice in zip(self._matches(), choices, strict=True)
        )
        if consulted:
            return self.vary
        return tuple(name for name in self.vary if name != "accept-language")

    def snippets(
        self,
        page_language: str | None = None,
        *,
        css: bool = False,
        nonce: str | None = None,
    ) -> dict[Placement, str]:
        """The HTML to insert at each placement, notices in priority order."""
        language = page_language or None

        def make() -> dict[Placement, str]:
            made: dict[Placement, str] = {}
            for notice in self.notices:
                markup = notice.html(self.locale_for(notice, language))
                made[notice.placement] = made.get(notice.placement, "") + markup
            return made

        out = dict(self.derived("snippets", language, make))
        if css and out:
            first = next(iter(out))
            out[first] = style_element(nonce) + out[first]
        return out

    def to_dict(self, page_language: str | None = None, *, trace: bool = True) -> dict[str, object]:
        """A JSON-able summary (the ``compliance check --format json`` document)."""
        notices = []
        for notice in self.notices:
            locale = self.locale_for(notice, page_language)
            notices.append(
                {
                    "rule": notice.rule_id,
                    "locale": locale,
                    "placement": notice.placement,
                    "translation": notice.translation_status(locale),
                    "text": notice.text(locale),
                    "html": notice.html(locale),
                }
            )
        block: dict[str, object] | None = None
        if self.block is not None:
            block = {
                "rule": self.block.rule_id,
                "status": self.block.status,
                "locale": self.block.locale,
                "translation": self.block.translation_status(),
                "link": self.block.link_header,
                "text": self.block.text(),
                "html": self.block.html(),
            }
        withholds = []
        for withhold in self.withholds:
            chosen = self.locale_for(withhold, page_language) if withhold.locales else None
            withholds.append(
                {
                    "rule": withhold.rule_id,
                    "marks": list(withhold.marks),
                    "embeds": list(withhold.embeds),
                    "locale": chosen,
                    "translation": withhold.translation_status(chosen) if chosen else None,
                    "text": withhold.text(chosen),
                    "html": withhold.placeholder(chosen),
                }
            )
        return {
            "location": {
                "country": self.location.country,
                "subdivisions": list(self.location.subdivisions),
                "source": self.location.source,
            },
            "notices": notices,
            "block": block,
            "withholds": withholds,
            "headers": dict(self.headers),
            "vary": list(self.vary_for(page_language)),
            "private": self.private,
            "trace": [
                {"rule": t.rule_id, "applied": t.applied, "reason": t.reason} for t in self.trace
            ]
            if trace
            else [],
        }
