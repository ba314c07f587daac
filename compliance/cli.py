"""The ``compliance`` command line: lint, test, check, locate, schema, demo.

Exit codes: 0 success, 1 problems found (lint errors, failing rule tests), 2 usage errors
(bad arguments, missing files) and output that cannot be written. Bad input is reported in
words, never as a traceback; a reader of the output that stops early (``| head``) leaves the
exit code as it is.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import io
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from .errors import ComplianceError, ConfigurationError, RuleError

if TYPE_CHECKING:
    from .engine import Engine
    from .models import VariableValue

__all__ = ["main"]


class _UsageError(Exception):
    pass


class _VersionAction(argparse.Action):
    # argparse's own "version" action reflows the text into one paragraph.
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        _out(_version())
        parser.exit()


def _version() -> str:
    return f"compliance {__version__}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compliance",
        description="Jurisdiction-aware legal notices: check, test and lint rule packs.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lint = commands.add_parser("lint", help="check rule files; FILE:LINE:COL lines on problems")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories")
    _pack_option(lint)
    lint.add_argument(
        "--strict",
        action="store_true",
        help="also fail on what a reviewer needs (e.g. rules and regions without sources)",
    )
    lint.add_argument(
        "--at",
        metavar="DATE",
        help="the day `review_by` dates are checked against (YYYY-MM-DD), default today (UTC)",
    )
    lint.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable the site sets (repeatable); required variables left unset are noted",
    )

    test = commands.add_parser("test", help="run the tests written in rule files")
    test.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories")
    _pack_option(test)
    test.add_argument("--geoip-db", metavar="PATH", help="MaxMind .mmdb for readers given by IP")
    test.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable the site sets (repeatable); a test's own `variables` replace it",
    )
    test.add_argument("--quiet", "-q", action="store_true", help="print only failures")

    check = commands.add_parser("check", help="show the decision for one reader and request")
    check.add_argument("--rules", action="append", metavar="PATH", help="rule files (repeatable)")
    _pack_option(check)
    check.add_argument("--geoip-db", metavar="PATH", help="MaxMind .mmdb database")
    who = check.add_mutually_exclusive_group()
    who.add_argument("--ip", help="reader's IP address")
    who.add_argument("--country", help="reader's ISO 3166-1 country code")
    check.add_argument(
        "--subdivision", action="append", default=[], metavar="CODE", help="ISO 3166-2 code"
    )
    check.add_argument("--url", default="https://www.example.org/", help="requested URL")
    check.add_argument("--accept-language", metavar="S", help="Accept-Language header")
    check.add_argument("--page-language", metavar="LANG", help="language of the page")
    check.add_argument("--at", metavar="DATE", help="date (YYYY-MM-DD), default today (UTC)")
    check.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="T",
        help="content tag (repeatable, or comma-separated as in X-Compliance-Tags)",
    )
    check.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="notice variable"
    )
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument(
        "--explain",
        action="store_true",
        help="show why each rule applied or not, and the status of each translation",
    )
    check.add_argument(
        "--page",
        metavar="FILE",
        help="an HTML page to run through the middleware's editor for this reader: says what "
        "would be withheld from it (and where notices go)",
    )
    _geo_header_options(check)

    locate = commands.add_parser(
        "locate", help="show where an IP address (or a CDN's geolocation headers) place a reader"
    )
    locate.add_argument("ip", nargs="?", help="the reader's IP address")
    locate.add_argument("--geoip-db", metavar="PATH", help="MaxMind .mmdb database")
    _geo_header_options(locate)
    locate.add_argument("--format", choices=["text", "json"], default="text")

    commands.add_parser("schema", help="print the JSON Schema of the rule format")

    demo = commands.add_parser("demo", help="run a local demo site with a location simulator")
    demo.add_argument(
        "--port", type=_port, default=8000, help="TCP port (default 8000; 0: any free port)"
    )
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to listen on (default 127.0.0.1). WARNING: any other than a loopback "
        "address exposes the demo to whoever reaches it: its rule preview, and a simulator "
        "that believes every client (the demo warns when it starts)",
    )
    demo.add_argument(
        "--rules",
        action="append",
        metavar="PATH",
        help="rule files or directories (repeatable), watched: edit one and reload the page",
    )
    _pack_option(demo)
    demo.add_argument(
        "--geoip-db",
        metavar="PATH",
        help="MaxMind .mmdb that locates an IP address given to the simulator",
    )
    demo.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable the site sets (repeatable); a notice needing one unset is not shown",
    )
    _export_parser(commands)
    return parser


def _port(value: str) -> int:
    """A TCP port for ``demo --port`` (0: any free one, which uvicorn then names): a bad
    one is a usage error, not uvicorn's traceback."""
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (0 to 65535)")
    return port


def _pack_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--pack",
        action="append",
        default=[],
        metavar="NAME",
        help="a rule pack bundled with compliance (repeatable; without --pack and rule "
        "paths: russia)",
    )


def _geo_header_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--geo-header",
        metavar="PROVIDER",
        help="locate the reader from a CDN's request headers, as the middleware does behind "
        "a trusted proxy: cloudflare, cloudfront, akamai, fastly, google, generic",
    )
    command.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header the CDN sent (repeatable); when none of them is a header the "
        "provider reads (fastly and generic read none of their own; google's is the one the "
        "load balancer is configured with), the first names the country header, the second "
        "the region header",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    _printable_stdout()
    args = _parser().parse_args(argv)
    try:
        code = _run(args)
        _flush_stdout()
    except _OutputError as exc:
        print(f"compliance {args.command}: cannot write the output: {exc}", file=sys.stderr)
        return 2
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        handler = _COMMANDS[args.command]
        return handler(args)
    except RuleError as exc:
        # One FILE:LINE:COL line per problem on stdout, for editors and CI annotations; the
        # count goes to stderr so that stdout holds nothing else.
        for problem in exc.problems:
            _out(str(problem))
        print(f"{len(exc.problems)} problem(s) in rule files", file=sys.stderr)
        return 1
    except (ConfigurationError, _UsageError) as exc:
        print(f"compliance {args.command}: {exc}", file=sys.stderr)
        return 2
    except ComplianceError as exc:
        print(f"compliance {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# -- standard output ----------------------------------------------------------------------------
# Rule texts are Russian, Ukrainian, ...; paths may hold any byte. Output goes through _out so
# that neither a terminal that cannot show a character, nor a reader that stops reading
# (`compliance lint rules/ | head`), turns into a traceback or a wrong exit code.


class _OutputError(Exception):
    """Standard output cannot be written (a full disk, say)."""


def _printable_stdout() -> None:
    """Let standard output show what its encoding cannot (``\u0418``) instead of failing
    with UnicodeEncodeError: a Latin-1 or ASCII terminal, a file name with undecodable
    bytes."""
    stream = sys.stdout
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        stream.reconfigure(errors="backslashreplace")


def _unicode_stdout() -> bool:
    """Whether standard output's encoding can write every character."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def _json(document: object) -> str:
    # \u escapes keep the JSON valid where the output's encoding lacks a character, and
    # for DEL and the C1 controls json.dumps leaves as they are (_out would escape them in
    # a way JSON does not read).
    text = json.dumps(document, ensure_ascii=not _unicode_stdout(), indent=2)
    return _JSON_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# Control characters (ESC starts a terminal's escape sequences: hidden text, a new window
# title) are shown escaped: a notice text printed by `check` reads on screen as it is
# written, as readers get it in the page. Line breaks and tabs are the output's own.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_JSON_CONTROLS = re.compile("[\x7f-\x9f]")


def _out(text: str) -> None:
    """Print ``text`` (and a line break) on standard output, control characters escaped."""
    text = _TERMINAL_CONTROLS.sub(
        lambda m: m.group().encode("unicode_escape").decode("ascii"), text
    )
    try:
        print(text)
    except BrokenPipeError:
        _drop_stdout()
    except OSError as exc:
        raise _OutputError(exc.strerror or str(exc)) from None


def _flush_stdout() -> None:
    if sys.stdout is None:  # started with standard output closed: nothing was printed
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
    except OSError as exc:
        raise _OutputError(exc.strerror or str(exc)) from None


def _drop_stdout() -> None:
    """The reader of standard output went away (``| head``): what is left to print goes
    nowhere, and the command still ends with its own exit code (a lint with errors exits 1,
    not 0, under ``set -o pipefail``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - a stream without a file descriptor
        pass


def _lint(args: argparse.Namespace) -> int:
    from .loader import lint, load_rules, read_variables

    at = _parse_date(args.at)
    paths, packs = _sources(args.paths, args.pack)
    variables = _variables(args.set)
    findings = lint(paths, packs=packs, strict=args.strict, today=at, variables=variables)
    errors = [f for f in findings if f.severity == "error"]
    # One FILE:LINE:COL line per finding on stdout, for editors and CI annotations.
    for finding in findings:
        _out(str(finding))
    if errors:
        print(f"{len(errors)} problem(s) in rule files", file=sys.stderr)
        return 1
    ruleset = load_rules(paths, packs=packs)
    read_variables(ruleset, variables)  # a date variable set to something else
    warned = [f for f in findings if f.severity == "warning"]
    warnings = f", {_count(len(warned), 'warning')}" if warned else ""
    _out(
        f"ok: {_count(len(ruleset.rules), 'rule')}, {_count(len(ruleset.regions), 'region')} "
        f"and {_count(len(ruleset.tests), 'test')} in {_count(len(ruleset.files), 'file')}"
        f"{warnings}"
    )
    return 0


def _sources(
    paths: Sequence[str] | None, packs: Sequence[str]
) -> tuple[list[str] | None, list[str] | None]:
    """The rule paths and bundled packs to load (both None: the default pack), with every
    ``--pack`` name checked."""
    from .loader import pack_path

    for name in packs:
        try:
            pack_path(name)
        except ConfigurationError as exc:
            raise _UsageError(f"--pack: {exc}") from None
    return (list(paths) if paths else None), (list(dict.fromkeys(packs)) if packs else None)


def _rule_paths(paths: Sequence[str] | None, packs: Sequence[str]) -> list[str] | None:
    """The rule files to load as one list of paths: the paths given plus each ``--pack``'s
    file; None (the default pack) when neither is given."""
    from .loader import resolve_sources

    chosen_paths, chosen_packs = _sources(paths, packs)
    if chosen_packs is None:
        return chosen_paths
    return [str(source) for source in resolve_sources(chosen_paths, chosen_packs)]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _test(args: argparse.Namespace) -> int:
    from .ruletests import run_rule_tests

    paths, packs = _sources(args.paths, args.pack)
    engine = _engine(paths, packs, args.geoip_db, args.set)
    outcomes = run_rule_tests(engine)
    failed = [o for o in outcomes if not o.passed]
    for outcome in outcomes:
        if outcome.passed:
            if not args.quiet:
                _out(f"{outcome.title}: ok")
        else:
            _out(outcome.report())
    _out(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _tags(values: Sequence[str]) -> frozenset[str]:
    """The ``--tag`` values read as the middleware reads an ``X-Compliance-Tags`` header:
    comma-separated, spaces around each tag dropped (``--tag 'withheld, other'`` is two
    tags, not one that no rule names)."""
    from .http import split_tags

    return frozenset().union(*(split_tags(value) for value in values))


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _UsageError(f"--at {value!r} is not a date (YYYY-MM-DD)") from None


def _variables(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise _UsageError(f"--set {pair!r}: write NAME=VALUE")
        out[name] = value
    return out


def _declared_variables(
    pairs: Sequence[str], paths: Sequence[str] | None, packs: Sequence[str] | None
) -> dict[str, VariableValue]:
    """The ``--set`` values read as the rules declare each variable (a date as a date, see
    :func:`~compliance.loader.read_variables`), for a command that loads the rules itself.
    Loads them only when something is set."""
    from .loader import load_rules, read_variables

    texts = _variables(pairs)
    return read_variables(load_rules(paths, packs=packs), texts) if texts else {}


def _engine(
    paths: Sequence[str] | None,
    packs: Sequence[str] | None,
    geoip_db: str | None,
    pairs: Sequence[str],
) -> Engine:
    """An engine over the rules, with the ``--set`` values read as the rules declare them."""
    from .engine import Engine

    texts = _variables(pairs)
    return Engine.from_paths(paths, geoip_db, packs=packs, variable_texts=texts)


def _check(args: argparse.Namespace) -> int:
    at = _parse_date(args.at)
    # Every argument is checked before the rules load: a typo is a usage error saying what
    # is valid, never a silent "no notices" for a reader who cannot exist.
    location = _reader_location(args)
    _check_url(args.url)
    if args.page_language is not None:
        _check_language("--page-language", args.page_language)
    paths, packs = _sources(args.rules, args.pack)
    engine = _engine(paths, packs, args.geoip_db, args.set)

    def decide(location: Any) -> Any:
        return engine.decide(
            ip=args.ip,
            location=location,
            url=args.url,
            accept_language=args.accept_language,
            page_language=args.page_language,
            at=at,
            tags=_tags(args.tag),
        )

    decision = decide(location)
    # As in the middleware: a CDN's country alone, where a rule names subdivisions of it,
    # is completed by the address (a City database gives the subdivision).
    header_only = location is not None and location.via_header is not None
    if decision.needs_subdivision and header_only and args.ip is not None:
        from .geo import completed

        decision = decide(completed(location, engine.locate(args.ip)))
    page = _read_page(args.page) if args.page is not None else None
    if args.format == "json":
        document = decision.to_dict(args.page_language)
        if page is not None:
            document["page"] = _page_report(decision, args.url, args.page_language, page)
        _out(_json(document))
        return 0
    _out(_describe_decision(decision, args.page_language, explain=args.explain))
    if page is not None:
        report = _page_report(decision, args.url, args.page_language, page)
        _out(_describe_page(args.page, report, decision, args.page_language))
    return 0


def _reader_location(args: argparse.Namespace) -> Any:
    """The reader given by ``--country``/``--subdivision`` or by CDN headers; None when the
    engine is to locate ``--ip`` itself."""
    from .geo import Location

    if args.ip is None and args.country is None and args.geo_header is None:
        raise _UsageError("say who the reader is: --ip IP, --country CC or --geo-header PROVIDER")
    if args.country is not None and args.geo_header is not None:
        raise _UsageError("--country and --geo-header each give the location: choose one")
    if args.header and args.geo_header is None:
        raise _UsageError("--header goes with --geo-header PROVIDER")
    if args.country is None:
        if args.ip is not None:
            _check_ip("--ip", args.ip)
        if args.subdivision:
            raise _UsageError("--subdivision goes with --country")
        return _header_location(args)
    country = _country(args.country)
    subdivisions = tuple(_subdivision(country, value) for value in args.subdivision)
    return Location.of(country, *subdivisions, source="command line")


def _country(value: str) -> str:
    import pycountry

    code = value.strip().upper()
    if len(code) == 2 and code.isalpha():
        if code == "XK" or pycountry.countries.get(alpha_2=code) is not None:
            return code
        raise _UsageError(
            f"--country {value!r} is not an assigned ISO 3166-1 code: give a country such as "
            "RU, UA or DE"
        )
    raise _UsageError(
        f"--country {value!r} is not an ISO 3166-1 code: give two letters such as RU, UA, DE"
    )


def _subdivision(country: str, value: str) -> str:
    import pycountry

    code = value.strip().upper()
    head, dash, _ = code.partition("-")
    if not dash:
        raise _UsageError(
            f"--subdivision {value!r} is not a full ISO 3166-2 code: write it with its "
            f"country, e.g. {country}-{code or '43'}"
        )
    if head != country:
        raise _UsageError(
            f"--subdivision {value!r} is not in {country}: a subdivision of --country "
            f"{country} starts with {country}-"
        )
    if pycountry.subdivisions.get(code=code) is None:  # type: ignore[no-untyped-call]
        known = sorted(
            s.code
            for s in pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
            or ()
        )
        examples = f"for example {', '.join(known[:3])}" if known else "it has none"
        raise _UsageError(
            f"--subdivision {value!r} is not an ISO 3166-2 code of {country} ({examples})"
        )
    return code


def _check_ip(option: str, value: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _UsageError(f"{option} {value!r} is not an IP address".lstrip()) from None


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


def _header_lines(values: Sequence[str]) -> dict[str, str]:
    """``--header 'Name: value'`` lines as a request's headers (lower-case names)."""
    headers: dict[str, str] = {}
    for line in values:
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name) or len(value) > 1024:
            raise _UsageError(f"--header {line!r}: write 'Name: value', e.g. 'CF-IPCountry: RU'")
        headers[name.lower()] = value
    return headers


def _header_location(args: argparse.Namespace) -> Any:
    """Where the CDN headers put the reader (None without ``--geo-header``); None too when
    they say nothing and ``--ip`` is there to be located instead, as in the middleware."""
    from .geo import HeaderGeolocator, get_provider

    headers = _header_lines(args.header)
    if args.geo_header is None:
        if headers:
            raise _UsageError("--header goes with --geo-header PROVIDER")
        return None
    names = list(headers)
    try:
        provider = get_provider(args.geo_header)
    except ConfigurationError as exc:
        raise _UsageError(f"--geo-header: {exc}") from None
    if provider.country_header is None and not names:
        raise _UsageError(
            f"--geo-header {args.geo_header}: this provider has no fixed header names; "
            "give the country header first: --header 'X-Country: RU'"
        )
    if provider.country_header is None or (names and not set(names) & set(provider.headers)):
        # No header names of its own, or none of the lines is one of them (a Google load
        # balancer's header is the one the site configured): the lines name them, as
        # HeaderGeolocator(provider, header=..., region_header=...) does in the middleware.
        geolocator = HeaderGeolocator(
            provider, names[0], region_header=names[1] if len(names) > 1 else None
        )
    else:
        geolocator = HeaderGeolocator(provider)
    # The CLI stands for a request that came through the trusted proxy.
    location = geolocator.locate(getattr(args, "ip", None), headers, trusted=True)
    if location.country is None and getattr(args, "ip", None) is not None:
        return None
    return location


def _check_url(value: str) -> None:
    from .models import request_url

    try:
        request_url(value)
    except ValueError as exc:
        raise _UsageError(f"--url {exc}") from None


def _check_language(option: str, value: str) -> None:
    from .locales import parse_language_tag

    if parse_language_tag(value) is None:
        raise _UsageError(
            f"{option} {value!r} is not a language CLDR knows: use a code such as en, ru, uk "
            "or pt-BR"
        )


_MAX_PAGE = 64 * 1024 * 1024
_NOTICE = re.compile(
    rb'<aside class="compliance-notice" data-compliance-rule="([^"]*)"(?: lang="([^"]*)")?'
)
_PLACEHOLDER = re.compile(
    rb'<aside class="compliance-withheld" data-compliance-rule="([^"]*)" lang="([^"]*)"'
)


def _read_page(path: str) -> bytes:
    import stat

    try:
        with open(path, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise _UsageError(f"--page {path!r} is not a regular file")
            data = file.read(_MAX_PAGE + 1)
    except OSError as exc:
        raise _UsageError(f"--page {path!r}: {exc.strerror or exc}") from None
    if len(data) > _MAX_PAGE:
        raise _UsageError(f"--page {path!r} is larger than {_MAX_PAGE // (1024 * 1024)} MiB")
    return data


def _page_report(decision: Any, url: str, page_language: str | None, page: bytes) -> dict[str, Any]:
    """``page`` through the middleware's own response core for this decision, as a reader
    would get it: what was withheld (by rule, as the middleware counts it: with or without a
    placeholder), which notices went in, and whether the fail mode cut the page short."""
    from urllib.parse import urlsplit

    from .core import EDIT, Data, Middleware, Replace, Request, Start

    class _Decided:
        # The decision shown above, for the core: same reader, same request, same date.
        def locate(self, ip: str | None) -> Any:
            return decision.location

        def decide(self, *, location: Any, request: Any) -> Any:
            return decision

    parts = urlsplit(url)
    core: Middleware[None] = Middleware(None, _Decided())
    request = Request(
        method="GET",
        host=parts.netloc,
        path=parts.path or "/",
        query=parts.query,
        peer=None,
        headers={},
    )
    exchange = core.exchange(request)
    early = exchange.begin()
    if early is not None:
        return {
            "status": early.status,
            "withheld": {},
            "notices": [],
            "locales": {},
            "placeholder_locales": {},
            "bytes_removed": 0,
            "not_edited": None,
            "cut": False,
        }
    headers = [("Content-Type", "text/html")]
    if page_language:
        headers.append(("Content-Language", page_language))
    action = exchange.start(200, headers)
    status = 200
    if isinstance(action, Replace):
        edited = action.response.body
        status = action.response.status
    elif action is EDIT:
        events = exchange.feed(page)
        if not exchange.stopped:
            events += exchange.finish()
        edited = b"".join(e.data for e in events if isinstance(e, Data))
        status = next((e.status for e in reversed(events) if isinstance(e, Start)), 200)
    else:
        edited = page
    found = _NOTICE.findall(edited)
    counts = core.metrics()
    # The fail mode's causes: the page cut short (its notices still put in), or notices
    # lost. With content to withhold, the fail mode ends the document where editing stopped
    # (never the original); only notices with no place at the end leave it whole.
    lost = counts["notices_not_delivered"]
    cut = bool(counts["pages_cut"]) or (
        bool(decision.withholds) and any(cause != "not inserted" for cause in lost)
    )
    return {
        "status": status,
        "withheld": dict(counts["withheld"]),
        "notices": [rule.decode("utf-8", "replace") for rule, _ in found],
        # The locale each notice went in with: with no Content-Language, the page's own
        # <html lang> chooses it, as it does for readers.
        "locales": {
            rule.decode("utf-8", "replace"): lang.decode("utf-8", "replace")
            for rule, lang in found
            if lang
        },
        "placeholder_locales": {
            rule.decode("utf-8", "replace"): lang.decode("utf-8", "replace")
            for rule, lang in _PLACEHOLDER.findall(edited)
        },
        "bytes_removed": max(0, len(page) - len(edited) + _inserted(edited)),
        "not_edited": ", ".join(dict.fromkeys([*counts["pages_cut"], *lost])) or None,
        "cut": cut,
    }


def _inserted(edited: bytes) -> int:
    """Bytes of library markup in ``edited`` (notices, placeholders, style sheet)."""
    total = 0
    for pattern in (rb"<aside class=\"compliance-(?:notice|withheld)\".*?</aside>",):
        total += sum(len(m) for m in re.findall(pattern, edited, re.S))
    return total


def _describe_page(
    path: str, report: dict[str, Any], decision: Any, page_language: str | None
) -> str:
    lines = [f"Page {path}:"]
    if report["status"] != 200:
        if report["not_edited"]:
            lines.append(
                f"  answered with {report['status']} instead: the page cannot be edited safely "
                f"({report['not_edited']})"
            )
        else:
            lines.append(f"  answered with {report['status']} instead (see Block above)")
        return "\n".join(lines)
    if report["cut"]:
        lines.append(
            f"  cut short: the page cannot be edited safely ({report['not_edited']}); the "
            "reader gets it only up to where that was found"
        )
    elif report["not_edited"]:
        lines.append(
            f"  notices not put in ({report['not_edited']}): the middleware's fail mode "
            "sends the page without them"
        )
    if not report["withheld"] and not report["cut"]:
        lines.append("  nothing withheld")
    silent = {w.rule_id for w in decision.withholds if not w.locales}
    placeholders = report["placeholder_locales"]
    for rule, count in report["withheld"].items():
        noun = "element" if count == 1 else "elements"
        how = "removed without a trace" if rule in silent else "each replaced by its placeholder"
        if rule in placeholders:
            how += f" ({placeholders[rule]})"
        lines.append(f"  withheld by {rule}: {count} {noun}, {how}")
    if report["bytes_removed"]:
        lines.append(f"  {report['bytes_removed']} bytes of the page's own markup removed")
    locales = report["locales"]
    notices = ", ".join(
        f"{rule} ({locales[rule]})" if rule in locales else rule for rule in report["notices"]
    )
    lines.append(f"  notices in the page: {notices or 'none'}")
    chosen = [
        *((notice, locales, "") for notice in decision.notices),
        *((withhold, placeholders, "'s placeholder") for withhold in decision.withholds),
    ]
    for match, used_by_rule, what in chosen:
        shown = decision.locale_for(match, page_language)
        used = used_by_rule.get(match.rule_id)
        if used is not None and not _same_locale(used, shown):
            lines.append(
                f"  {match.rule_id}{what} goes in as {used} (the page's own language), not "
                f"{shown} as shown above: add --page-language {used} to see that text"
            )
    return "\n".join(lines)


def _same_locale(one: str, other: str) -> bool:
    from .locales import locale_key

    return locale_key(one) == locale_key(other)


def _describe_decision(decision: Any, page_language: str | None, *, explain: bool) -> str:
    location = decision.location
    where = "/".join([location.country or "unknown", *location.subdivisions])
    lines = [f"Location: {where} (source: {location.source})"]
    if decision.block is not None:
        block = decision.block
        status = _translation(block, block.locale)
        lines.append(f"Block: {block.status} by rule {block.rule_id} ({block.locale}{status})")
        lines.append(f"  Link: {block.link_header}")
        lines += _indent(block.text())
        if explain:
            lines += _translations(block)
    if not decision.notices:
        lines.append("Notices: none")
    for notice in decision.notices:
        locale = decision.locale_for(notice, page_language)
        status = _translation(notice, locale)
        lines.append(f"Notice: {notice.rule_id} ({locale}, {notice.placement}{status})")
        lines += _indent(notice.text(locale))
        if explain:
            lines += _translations(notice)
    for withhold in decision.withholds:
        parts = [
            f"marks {', '.join(withhold.marks)}" if withhold.marks else "",
            f"embeds from {', '.join(withhold.embeds)}" if withhold.embeds else "",
        ]
        what = "; ".join(p for p in parts if p)
        lines.append(f"Withhold: {withhold.rule_id} ({what})")
        if withhold.locales:
            locale = decision.locale_for(withhold, page_language)
            lines.append(f"  placeholder ({locale}{_translation(withhold, locale)}):")
            lines += _indent(withhold.text(locale) or "")
        else:
            lines.append("  removed without a placeholder")
    for name, value in decision.headers.items():
        lines.append(f"Header: {name}: {value}")
    if explain:
        lines.append("Trace:")
        lines += [f"  {entry}" for entry in decision.trace]
    return "\n".join(lines)


def _translation(match: Any, locale: str) -> str:
    """``", unreviewed translation of en"`` and the like; empty when the rule does not say
    which text is the original."""
    status = _status(match, locale)
    if status is None:
        return ""
    if status == "original":
        return ", original text"
    return f", {status} translation of {match.original}"


def _status(match: Any, locale: str) -> str | None:
    """Whether ``locale``'s text is the original or a (reviewed, unreviewed) translation;
    None when the rule does not name its original. Withholding placeholders carry the same
    fields as notices."""
    original = getattr(match, "original", None)
    if original is None:
        return None
    if locale == original:
        return "original"
    return str(getattr(match, "translations", {}).get(locale, "unreviewed"))


def _translations(match: Any) -> list[str]:
    # Notices list their locales; a block names those its rule states a status for.
    stated = [*([match.original] if match.original else []), *match.translations]
    locales = getattr(match, "locales", None) or tuple(dict.fromkeys(stated))
    statuses = []
    for locale in locales:
        statuses.append(f"{locale} {_status(match, locale) or 'not stated'}")
    return [f"  Texts: {', '.join(statuses)}"] if statuses else []


def _indent(text: str) -> list[str]:
    out = []
    for paragraph in text.split("\n\n"):
        out += textwrap.wrap(paragraph, 88, initial_indent="  ", subsequent_indent="  ") or [""]
        out.append("")
    return out[:-1]


def _locate(args: argparse.Namespace) -> int:
    from .geo import open_geolocator

    if args.ip is None and args.geo_header is None:
        raise _UsageError("give the reader's IP address, or --geo-header with --header lines")
    if args.ip is not None:
        _check_ip("", args.ip)
    location = _header_location(args)
    if location is None:
        geolocator = open_geolocator(args.geoip_db)
        try:
            location = geolocator.locate(args.ip)
        finally:
            geolocator.close()
    if args.format == "json":
        _out(_json(location.to_dict()))
    else:
        where = "/".join([location.country or "unknown", *location.subdivisions])
        network = f", network {location.network}" if location.network else ""
        via = f", headers {location.via_header}" if location.via_header else ""
        who = args.ip if args.ip is not None else "reader"
        _out(f"{who}: {where} (source: {location.source}{network}{via})")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .models import json_schema

    _out(_json(json_schema()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    # uvicorn is the optional `demo` extra; say how to get it instead of a traceback.
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise _UsageError("the demo needs uvicorn: pip install 'compliance[demo]'") from None
    from .demo import run_demo

    paths, packs = _sources(args.rules, args.pack)
    return run_demo(
        port=args.port,
        host=args.host,
        rules=paths,
        packs=packs,
        geoip_db=args.geoip_db,
        variables=_declared_variables(args.set, paths, packs),
    )


# -- export (edge configuration) --------------------------------------------------------------


def _export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="compile the rules into nginx or Cloudflare Worker configuration"
    )
    export.add_argument("target", choices=["nginx", "cloudflare"], help="the edge engine")
    export.add_argument("--rules", action="append", metavar="PATH", help="rule files (repeatable)")
    _pack_option(export)
    export.add_argument("--output", required=True, metavar="DIR", help="directory to write")
    export.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="notice variable"
    )
    export.add_argument("--geoip-db", metavar="PATH", help="nginx: the MaxMind .mmdb nginx reads")
    export.add_argument(
        "--at", metavar="DATE", help="nginx: the day whose rules are baked in (default today, UTC)"
    )
    export.add_argument(
        "--strict", action="store_true", help="exit 1 when anything cannot be expressed"
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files in DIR differ from a fresh export",
    )


def _export(args: argparse.Namespace) -> int:
    from .export import export_cloudflare, export_nginx, stale_files, write_export

    paths = _rule_paths(args.rules, args.pack)
    variables = _declared_variables(args.set, paths, None)
    if args.target == "nginx":
        if not args.geoip_db:
            raise _UsageError("nginx needs --geoip-db PATH: the database nginx's geoip2 reads")
        result = export_nginx(
            paths, geoip_db=args.geoip_db, at=_parse_date(args.at), variables=variables
        )
    else:
        if args.at is not None:
            raise _UsageError("--at is for nginx: the Worker evaluates effective dates per request")
        if args.geoip_db is not None:
            raise _UsageError("--geoip-db is for nginx: the Worker reads request.cf")
        result = export_cloudflare(paths, variables=variables)
    for omission in result.omissions:
        print(f"not expressible in {args.target}: {omission}", file=sys.stderr)
    for note in result.notes:
        print(note, file=sys.stderr)
    if args.check:
        stale = stale_files(result, args.output)
        for name in stale:
            print(f"out of date: {name} (run the same command without --check)", file=sys.stderr)
        if stale:
            return 1
    else:
        try:
            written = write_export(result, args.output)
        except ConfigurationError as exc:  # a file of the site's own where one goes
            raise _UsageError(str(exc)) from None
        except OSError as exc:  # a file where the directory goes, no permission, ...
            if not os.path.isdir(args.output) and os.path.exists(args.output):
                raise _UsageError(f"--output {args.output!r} is a file, not a directory") from None
            name = exc.filename2 or exc.filename
            where = f" ({name})" if name not in (None, args.output) else ""
            raise _UsageError(
                f"--output {args.output!r}: cannot write the export there{where}: "
                f"{exc.strerror or exc}"
            ) from None
        for path in written:
            _out(str(path))
    if args.strict and result.omissions:
        print(
            f"--strict: {_count(len(result.omissions), 'thing')} cannot be expressed in "
            f"{args.target}",
            file=sys.stderr,
        )
        return 1
    return 0


_COMMANDS = {
    "lint": _lint,
    "test": _test,
    "check": _check,
    "locate": _locate,
    "schema": _schema,
    "demo": _demo,
    "export": _export,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
