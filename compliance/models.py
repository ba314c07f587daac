"""The rule-file format, version 1, as pydantic models.

These models check the shape of one file, and every check on one field (header names and
values, URLs). Checks that need more than one value or more than one file (ISO codes,
regions, locales, placeholders, duplicate ids) live in :mod:`compliance.loader`, which
reports them with their file positions.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from compliance.html.placements import PLACEMENTS, Placement
from compliance.http import idna_ascii, normalize_path
from compliance.locales import locale_key

__all__ = [
    "FORMAT_VERSION",
    "HOP_BY_HOP_HEADERS",
    "HTML_ATTRIBUTES",
    "HTML_LINK_SCHEMES",
    "HTML_TAGS",
    "Block",
    "Effective",
    "Expect",
    "Message",
    "Notice",
    "Placement",
    "Reader",
    "Region",
    "Request",
    "Rule",
    "RuleFile",
    "RuleTest",
    "RuleVariable",
    "Source",
    "Texts",
    "Translation",
    "Withhold",
]

HTML_TAGS = frozenset({"p", "a", "strong", "em", "br", "ul", "ol", "li"})
"""The tags allowed in ``html:`` texts."""

HTML_ATTRIBUTES: Mapping[str, frozenset[str]] = MappingProxyType({"a": frozenset({"href"})})
"""The attributes kept in ``html:`` texts, by tag; every other is dropped."""

HTML_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
"""The URL schemes a link in an ``html:`` text may have (a relative link has none)."""

HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
    }
)
"""Headers that belong to one connection or frame the body (RFC 9110 7.6.1, 8.6; any
``Proxy-*`` too): a server refuses them from an application, so a rule may not set them."""

FORMAT_VERSION = 1
"""The newest rule-file format version this library reads."""

ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN, max_length=100)]
Jurisdiction = Annotated[str, Field(min_length=1, max_length=64)]
Glob = Annotated[str, Field(min_length=1, max_length=500)]
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _decoded_path(pattern: str) -> str:
    """A path pattern as the paths it is matched against are: decoded (as the application's
    router reads them), where an escape copied from a browser's address bar never occurs,
    and normalised (:func:`~compliance.http.normalize_path`), where no segment is ``.`` or
    ``..`` and no ``//`` is left. A pattern with any of them would never match."""
    if _ESCAPE.search(pattern) is not None:
        raise PydanticCustomError(
            "path_escape",
            "path patterns match the decoded path: write '{decoded}', without percent escapes",
            {"decoded": unquote(pattern, errors="replace")},
        )
    segments = pattern.split("/")[1:]  # a pattern not starting with '/' is reported later
    if not pattern.startswith("/") or (
        "." not in segments and ".." not in segments and "" not in segments[:-1]
    ):
        return pattern
    up = max((i for i, s in enumerate(segments) if s == ".."), default=0)
    before = "/".join(segments[:up])
    # Which segment '..' leaves depends on what a star before it matched: no suggestion then.
    written = None if "*" in before or "?" in before else normalize_path(pattern)
    raise PydanticCustomError(
        "path_unnormalised",
        "'{pattern}' can never match: paths are matched normalised, with no '.' or '..' "
        "segment and no '//'" + (": write '{written}'" if written else ""),
        {"pattern": pattern, "written": written},
    )


PathGlob = Annotated[
    str,
    Field(min_length=1, max_length=500, json_schema_extra={"not": {"pattern": _ESCAPE.pattern}}),
    AfterValidator(_decoded_path),
]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=100)]
Token = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=100)]


def _registered_placement(name: str) -> str:
    """A placement name the injector has a strategy for (``compliance.html.PLACEMENTS``:
    the built-in ones and any a site registered before loading its rules)."""
    if name not in PLACEMENTS:
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": _placement_names()}
        )
    return name


def _placement_names() -> str:
    names = [repr(name) for name in PLACEMENTS]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _placement_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(PLACEMENTS)


def _header_name(name: str) -> str:
    lower = name.lower()
    if lower in HOP_BY_HOP_HEADERS or lower.startswith("proxy-"):
        raise ValueError(
            f"'{name}' is a hop-by-hop or framing header, which servers refuse from an "
            "application: a rule cannot set it"
        )
    return name


def _header_value(value: str) -> str:
    for char in value:
        code = ord(char)
        if code > 0xFF:
            raise ValueError(
                f"{char!r} (U+{code:04X}) cannot be sent in a header, which holds Latin-1 "
                "text only: write it as ASCII (percent-encode URLs, use RFC 8187 for text)"
            )
        if (code < 0x20 and char != "\t") or 0x7F <= code <= 0x9F:
            raise ValueError(f"control character U+{code:04X} is not allowed in a header value")
    return value


def request_url(url: str) -> str:
    """A URL a request is for: absolute, http or https, with a host (a path alone, or a host
    without ``https://``, would be read as a request for no host at all)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        example = "https://www.example.org/news/1"
        if parts is not None and not parts.scheme and not parts.netloc:
            example = "https://" + ("www.example.org" if url.startswith("/") else "") + url
        raise ValueError(f"{url!r} is not an absolute http(s) URL, e.g. {example}")
    return url


def _blocked_by(url: str) -> str:
    """A URL the ``Link`` header can carry: a host, a port in range, an IDN that has a
    punycode form (it is sent as punycode)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL ({exc})") from None
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host name")
    if port == 0:
        raise ValueError(f"{url!r}: port 0 is not a port")
    try:
        if not parts.hostname.isascii():
            idna_ascii(parts.hostname)
    except UnicodeError:
        raise ValueError(
            f"{url!r}: the host name {parts.hostname!r} is not a valid internationalized "
            "domain name"
        ) from None
    return url


def _utc_time(at: dt.date | dt.datetime | None) -> dt.date | dt.datetime | None:
    """A time with an offset must have a UTC time (``9999-12-31T23:59:59-12:00`` has not)."""
    if isinstance(at, dt.datetime) and at.tzinfo is not None:
        try:
            at.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(
                f"{at.isoformat()} is past the last time there is (9999-12-31T23:59:59 UTC)"
            ) from None
    return at


HeaderName = Annotated[
    str,
    Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=100),
    AfterValidator(_header_name),
]
HeaderValue = Annotated[str, Field(max_length=4000), AfterValidator(_header_value)]
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _date_as_written(value: Any) -> Any:
    """A date is a date, or text of the form YYYY-MM-DD (as the schema's ``format: date``
    says); pydantic alone would take the number 0 as 1970-01-01, and a time of midnight as
    its day. A date and time (a YAML timestamp) is taken in UTC, as rule days are: midnight
    UTC is its day, and any other time (``2025-05-17T00:00:00+02:00``, which is 22:00 UTC
    the day before) is refused, where pydantic would read the local midnight as that
    local day and the rule would start two hours late."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _ISO_DATE.match(value)
    ):
        raise PydanticCustomError("date_type", "Input should be a valid date")
    if isinstance(value, dt.datetime) and value.utcoffset():
        try:
            utc = value.astimezone(dt.UTC)
        except OverflowError:  # out of the calendar in UTC: not a day either
            raise PydanticCustomError("date_type", "Input should be a valid date") from None
        if utc.time() != dt.time(0):
            raise PydanticCustomError(
                "value_error",
                "{written} is {utc} UTC, and rule dates are whole UTC days: write a date "
                "(YYYY-MM-DD) in UTC",
                {"written": value.isoformat(), "utc": utc.strftime("%Y-%m-%d %H:%M")},
            )
        return utc
    return value


def _time_as_written(value: Any) -> Any:
    """A date or date-time is not a number (pydantic would read one as Unix time)."""
    if isinstance(value, bool | int | float):
        raise PydanticCustomError("datetime_type", "Input should be a valid datetime")
    return value


def _number_as_written(value: Any) -> Any:
    """A whole number is a number: not text ('5'), nor true or false."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _false_as_written(value: Any) -> Any:
    """``false`` is false: not 0, nor the text 'false'."""
    if value is not None and not isinstance(value, bool):
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": "false"}
        )
    return value


WholeNumber = Annotated[int, BeforeValidator(_number_as_written)]
"""An integer as JSON Schema's ``integer`` has it (``1.0`` is one; ``'5'`` and ``true`` are
not)."""

Day = Annotated[dt.date, BeforeValidator(_date_as_written)]
"""A UTC day: a YAML date, or text written YYYY-MM-DD."""

Scalar = str | StrictInt | StrictFloat | dt.date | dt.datetime
"""A variable's value: ``true`` is none (it would print as ``1``), as the schema says."""
VariableValue = Scalar | dict[str, Scalar]
"""A value for every locale, or a value per locale (``{en: RFE/RL, ru: Радио Свобода}``)."""


RuleVariable = VariableValue | None
"""A variable as a rule declares it: a value, or ``null`` for a required variable that has
no default and must be set by the site (``variables={...}``, ``--set NAME=VALUE``)."""


def value_for_locale(value: VariableValue | None, locale: str) -> Scalar | None:
    """The value of a variable in ``locale``: a plain value is every locale's; in a
    per-locale map, the locale's own entry, else the nearest one it falls back to, its
    subtags dropped from the end (``zh-Hant`` for ``zh-Hant-TW``, then ``zh``; ``pt`` for
    ``pt-BR``). None when there is none (a required variable, a map without the locale).

    >>> value_for_locale({"en": "RFE/RL", "ru": "Радио Свобода"}, "ru_RU")
    'Радио Свобода'
    >>> value_for_locale({"zh": "自由亚洲电台", "zh-Hant": "自由亞洲電台"}, "zh_Hant_TW")
    '自由亞洲電台'
    >>> value_for_locale("RFE/RL", "uk"), value_for_locale({"en": "x"}, "de")
    ('RFE/RL', None)
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        return value
    by_locale: dict[str, Scalar] = {}
    for key, item in value.items():
        by_locale.setdefault(locale_key(key), item)
    wanted = locale_key(locale)
    while wanted:
        found = by_locale.get(wanted)
        if found is not None:
            return found
        wanted = wanted.rpartition("-")[0]
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Source(_Model):
    """A public source a rule or region rests on: a law, a register entry, a ruling."""

    url: str = Field(
        pattern=r"^https://[^\s<>\"]+$",
        max_length=2000,
        description="Where to read it (https).",
    )
    title: str = Field(min_length=1, max_length=500, description="What it is.")
    published: Day | None = Field(None, description="When it was published (YYYY-MM-DD).")


class Translation(_Model):
    """Whether a translated text has been reviewed, and by whom or how."""

    status: Literal["reviewed", "unreviewed"] = Field(
        description="`reviewed` when someone fluent checked it against the original."
    )
    note: str = Field("", description="Who reviewed it, when, or what is unsure.")


UnknownSubdivision = Literal["skip", "apply"]


class Region(_Model):
    """A named group of jurisdictions that rules can refer to by name."""

    title: str = Field(min_length=1, description="Human-readable name of the region.")
    description: str = Field("", description="Where the definition comes from; cite sources.")
    include: list[Jurisdiction] = Field(
        min_length=1,
        description="ISO 3166-1 country codes, ISO 3166-2 subdivision codes or other regions.",
    )
    exclude: list[Jurisdiction] = Field(
        default_factory=list, description="Jurisdictions carved out of `include`."
    )
    unknown_subdivision: UnknownSubdivision | None = Field(
        None,
        description="When the reader's country is known but not their subdivision: `apply` "
        "counts them in this region's subdivisions of that country, `skip` does not; unset: "
        "as the rule using the region says.",
    )
    sources: list[Source] = Field(
        default_factory=list, description="Where the definition comes from."
    )
    review_by: Day | None = Field(
        None, description="Check the definition again by this day; lint warns after it."
    )


class Effective(_Model):
    """When a rule is in force: `from` inclusive, `until` exclusive, both UTC days."""

    # `from_` is the Python name; a rule file writes `from`, as the schema says.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=False, validate_by_name=False
    )

    from_: Day | None = Field(
        None, alias="from", description="First UTC day the rule applies (inclusive)."
    )
    until: Day | None = Field(
        None, description="First UTC day the rule no longer applies (exclusive)."
    )


class Texts(_Model):
    """Text shown to readers, in one or more locales (checked by the subclasses)."""

    variables: dict[Identifier, RuleVariable] = Field(
        default_factory=dict,
        description="Values for `{name}` placeholders, one for every locale or one per "
        "locale; dates are formatted for the locale. `null`: a required variable with no "
        "default, which the site must set (`variables=` in Python, `--set NAME=VALUE` on "
        "the command line); until it does, the message is never shown with a blank: "
        "rendering it is a fault.",
    )
    default_locale: str = Field(
        "en", description="Locale used when no better match exists; must have a text."
    )
    text: dict[str, str] | None = Field(
        None,
        description="Plain text per locale; HTML-escaped; a blank line starts a new paragraph.",
    )
    html: dict[str, str] | None = Field(
        None,
        description="Limited HTML per locale (p, a[href], strong, em, br, ul, ol, li); "
        "sanitized. Use instead of `text`.",
    )
    original: str | None = Field(
        None,
        description="The locale whose text is copied verbatim from a source; the others are "
        "translations.",
    )
    translations: dict[str, Translation] = Field(
        default_factory=dict,
        description="For each translated locale: whether the translation has been reviewed.",
    )

    @property
    def texts(self) -> dict[str, str]:
        """The per-locale texts, whichever of `text` or `html` holds them."""
        return self.text if self.text is not None else (self.html or {})


class Message(Texts):
    """Text shown to readers, in one or more locales."""

    @model_validator(mode="after")
    def _one_kind_of_text(self) -> Message:
        if self.text is None and self.html is None:
            raise ValueError("needs `text` or `html`")
        if self.text is not None and self.html is not None:
            raise ValueError("has both `text` and `html`: choose one")
        if not self.texts:
            raise ValueError("needs a text in at least one locale")
        return self


class Notice(Message):
    """A notice injected into HTML pages."""

    placement: Annotated[Placement, AfterValidator(_registered_placement)] = Field(
        "body_end",
        json_schema_extra=_placement_schema,
        description="Where the notice goes; `marker` means at `<!-- compliance:notices -->`, "
        "`after_heading` right after the first `</h1>` of the body; both fall back to "
        "`body_start`.",
    )


class Block(Message):
    """Refuse the page with HTTP 451 (RFC 7725) and explain why."""

    status: Literal[451] = Field(451, description="HTTP status of the block page.")
    blocked_by: Annotated[str, AfterValidator(_blocked_by)] = Field(
        pattern=r"^https?://[^\s<>\"]+$",
        max_length=2000,
        description="URL of the entity implementing the block; sent in a "
        '`Link: <URL>; rel="blocked-by"` header.',
    )


class Withhold(Texts):
    """Remove parts of the page: marked elements and embeds from listed hosts, each replaced
    by a placeholder (``text``/``html`` per locale) unless ``placeholder: false``."""

    marks: list[Token] = Field(
        default_factory=list,
        description="Elements whose `data-compliance-withhold` attribute holds one of these "
        "tokens (space-separated, like `class`) are removed with their content.",
    )
    embeds: list[Glob] = Field(
        default_factory=list,
        description="Host globs: iframe, embed, object, video, audio, source, img, script and "
        "the other elements a browser loads from whose URL is on one of these hosts are "
        "removed.",
    )
    placeholder: Annotated[Literal[False] | None, BeforeValidator(_false_as_written)] = Field(
        None,
        description="`false`: remove without a trace (then give no `text`/`html`).",
    )

    @model_validator(mode="after")
    def _what_and_how(self) -> Withhold:
        if not self.marks and not self.embeds:
            raise ValueError("withholds nothing: give `marks`, `embeds` or both")
        if self.placeholder is False:
            if self.text is not None or self.html is not None:
                raise ValueError("has `placeholder: false` and a placeholder text: choose one")
            return self
        if self.text is None and self.html is None:
            raise ValueError(
                "needs a placeholder `text` or `html`, or `placeholder: false` to remove "
                "without a trace"
            )
        if self.text is not None and self.html is not None:
            raise ValueError("has both `text` and `html`: choose one")
        if not self.texts:
            raise ValueError("needs a text in at least one locale")
        return self


class Reader(_Model):
    """Who reads, in a rule test: by address, or by country and subdivisions."""

    ip: str | None = Field(None, description="Reader's IP address, geolocated as in production.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 country code.")
    subdivisions: list[str] = Field(
        default_factory=list, description="ISO 3166-2 codes, e.g. UA-43."
    )
    unknown: StrictBool = Field(False, description="A reader whose location is unknown.")

    @model_validator(mode="after")
    def _one_way(self) -> Reader:
        ways = sum([self.ip is not None, self.country is not None, self.unknown])
        if ways != 1:
            raise ValueError("give exactly one of `ip`, `country` or `unknown: true`")
        if self.subdivisions and self.country is None:
            raise ValueError("`subdivisions` needs `country`")
        return self


class Request(_Model):
    """The request in a rule test."""

    url: Annotated[str, AfterValidator(request_url)] = Field(
        "https://www.example.org/",
        description="Requested URL: absolute, http or https.",
        json_schema_extra={"pattern": "^[hH][tT][tT][pP][sS]?://"},
    )
    accept_language: str | None = Field(None, description="Accept-Language header.")
    page_language: str | None = Field(None, description="Language of the page, if known.")
    at: Annotated[
        dt.date | dt.datetime | None, BeforeValidator(_time_as_written), AfterValidator(_utc_time)
    ] = Field(None, description="When (UTC); default: today.")
    tags: list[Tag] = Field(default_factory=list, description="Content tags of the page.")
    variables: dict[Identifier, VariableValue] = Field(
        default_factory=dict,
        description="Site-wide values for rule variables in this test (as `variables=` or "
        "`--set` give them), e.g. for required variables; they replace the site's own.",
    )


class Expect(_Model):
    """What a rule test expects. Leave out what you do not want checked."""

    applies: StrictBool | None = Field(
        None, description="In a rule's own tests: whether that rule applies."
    )
    notices: list[Identifier] | None = Field(
        None, description="Exactly these notice rule ids, in order."
    )
    block: Identifier | None = Field(
        None, description="Rule id of the block expected; `null` for no block."
    )
    withholds: list[Identifier] | None = Field(
        None, description="Exactly these withholding rule ids, in order."
    )
    locale: str | None = Field(
        None,
        description="The locale chosen: in a rule's tests, that rule's (for a withholding, its "
        "placeholder's); in the file's tests, the block's, else the first notice's, else the "
        "first placeholder's.",
    )


class RuleTest(_Model):
    """An example reader and request with the outcome expected."""

    name: str = Field(min_length=1, description="Short description shown on failure.")
    reader: Reader = Field(description="Who reads: by IP address, or by country and subdivisions.")
    request: Request = Field(
        default_factory=Request, description="What is requested: URL, languages, date, tags."
    )
    expect: Expect = Field(description="The outcome expected; leave out what is not checked.")


class Rule(_Model):
    """When a rule applies, and what it then does (notice, block, withhold, headers)."""

    id: Identifier = Field(description="Unique id across all rule files: [a-z0-9][a-z0-9-]*.")
    title: str = Field(min_length=1, description="Short human-readable name.")
    description: str = Field("", description="Why the rule exists; cite the legal source.")
    jurisdictions: list[Jurisdiction] = Field(
        min_length=1,
        description='ISO 3166-1 or ISO 3166-2 codes, region names, or "*" for every known '
        "location.",
    )
    exclude: list[Jurisdiction] = Field(
        default_factory=list, description="Jurisdictions carved out of `jurisdictions`."
    )
    unknown_location: Literal["skip", "apply"] = Field(
        "skip", description="What to do when the reader's location is unknown."
    )
    unknown_subdivision: UnknownSubdivision = Field(
        "skip",
        description="When the reader's country is known but not their subdivision (country-"
        "level lookups): `apply` counts them in every subdivision of that country the rule "
        "names, `skip` in none. A region may say otherwise for its own subdivisions.",
    )
    effective: Effective = Field(
        default_factory=Effective, description="When the rule is in force (UTC days)."
    )
    hosts: list[Glob] = Field(
        default_factory=list,
        description="Glob patterns on the request host (`*` any run of characters), compared "
        "case-insensitively, without the port; empty: any.",
    )
    paths: list[PathGlob] = Field(
        default_factory=list,
        description="Glob patterns on the URL path (`*` within a segment, `**` across "
        "segments), compared case-sensitively; empty: any.",
    )
    exclude_paths: list[PathGlob] = Field(
        default_factory=list, description="Paths the rule never applies to."
    )
    tags: list[Tag] = Field(
        default_factory=list,
        description="Content tags (any of them, compared case-sensitively); empty: any content.",
    )
    priority: WholeNumber = Field(
        0,
        description="The order of the rules that apply: higher first, equal priorities by id. "
        "It orders notices, withholdings and headers, and picks among blocks.",
    )
    notice: Notice | None = Field(None, description="Inject a notice into HTML pages.")
    block: Block | None = Field(None, description="Refuse the page with HTTP 451.")
    withhold: Withhold | None = Field(
        None, description="Remove marked elements and embeds from HTML pages."
    )
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Extra response headers."
    )
    sources: list[Source] = Field(
        default_factory=list, description="The public sources the rule rests on."
    )
    review_by: Day | None = Field(
        None, description="Check the rule again by this day; lint warns after it."
    )
    tests: list[RuleTest] = Field(
        default_factory=list, description="Examples that `compliance test` checks."
    )

    @model_validator(mode="after")
    def _actions(self) -> Rule:
        if self.notice is not None and self.block is not None:
            raise ValueError("has both `notice` and `block`: a blocked page shows no notice")
        if self.withhold is not None and self.block is not None:
            raise ValueError(
                "has both `withhold` and `block`: a blocked page has nothing to withhold"
            )
        if (
            self.notice is None
            and self.block is None
            and self.withhold is None
            and not self.headers
        ):
            raise ValueError("does nothing: give `notice`, `block`, `withhold` or `headers`")
        return self


class RuleFile(_Model):
    """One rule file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:compliance:rule-file:v1",
        },
    )

    version: Literal[1] = Field(description="Format version; this library reads version 1.")
    regions: dict[Identifier, Region] = Field(
        default_factory=dict, description="Named groups of jurisdictions."
    )
    rules: list[Rule] = Field(default_factory=list, description="The rules.")
    tests: list[RuleTest] = Field(
        default_factory=list, description="Tests of the decision as a whole."
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the rule format (what ``compliance schema`` prints)."""
    schema = RuleFile.model_json_schema(by_alias=True)
    ordered: dict[str, Any] = {
        "$schema": schema.pop("$schema"),
        "$id": schema.pop("$id"),
    }
    ordered.update(schema)
    _close_pattern_properties(ordered)
    return ordered


def _close_pattern_properties(node: Any) -> None:
    """Keys that match no pattern are refused, as the models refuse them: a mapping whose
    keys have a pattern (region, variable and header names) allows no other keys."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)
