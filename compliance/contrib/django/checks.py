"""System checks (``manage.py check``): settings, rule files as FILE:LINE:COL, the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Info, Warning, register

from compliance.contrib.django.conf import WHERE, check_options, compliance_settings, relayed
from compliance.errors import ComplianceError, ConfigurationError

__all__ = ["check_compliance"]

MIDDLEWARE = "compliance.contrib.django.ComplianceMiddleware"
REQUEST_PROCESSOR = "django.template.context_processors.request"
# Django's per-site cache: what UpdateCacheMiddleware (listed first) stores, the middlewares
# listed after FetchFromCacheMiddleware's place see again.
_SITE_CACHE = frozenset(
    (
        "django.middleware.cache.UpdateCacheMiddleware",
        "django.middleware.cache.CacheMiddleware",
    )
)
# WhiteNoise answers the requests for the files it serves itself: the middlewares listed
# after it never see them.
_WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"


@register("compliance")
def check_compliance(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Every problem with ``settings.COMPLIANCE``, its rule files and its database."""
    try:
        settings = compliance_settings()
    except ConfigurationError as exc:
        return [Error(relayed(exc), id="compliance.E001", obj=WHERE)]
    messages: list[CheckMessage] = []
    try:
        check_options(settings)  # the values, as the middleware checks them at start-up
    except ConfigurationError as exc:
        messages.append(Error(relayed(exc), id="compliance.E001", obj=WHERE))
    if settings.engine is None:
        messages += _rule_files(settings.rules, settings.packs, settings.variables)
        if settings.geoip_db is not None:
            messages += _database(settings.geoip_db)
    messages += _wiring()
    messages += _forwarded_host(settings.options)
    return messages


def _rule_files(
    rules: Sequence[str] | None, packs: Sequence[str] | None, variables: Mapping[str, Any]
) -> list[CheckMessage]:
    """The rule files' problems, checked with the site's ``variables`` as the server
    loads them (a variable no rule uses stops it; a required one left unset is noted)."""
    from compliance.loader import lint

    paths = None if rules is None else list(rules)
    names = None if packs is None else list(packs)
    try:
        findings = lint(paths, packs=names, variables=dict(variables))
    except ConfigurationError as exc:
        try:
            lint(paths, packs=names)
        except ConfigurationError as path_error:  # a pack or a path that is not there
            return [Error(f"{WHERE}: {path_error}", id="compliance.E003", obj=WHERE)]
        return [Error(f"{WHERE}['variables']: {exc}", id="compliance.E001", obj=WHERE)]
    messages: list[CheckMessage] = []
    for finding in findings:
        # str(finding) is FILE:LINE:COL: message, which editors and CI logs link to.
        if finding.severity == "note":
            messages.append(Info(str(finding), id="compliance.I001", obj=WHERE))
        elif finding.severity == "warning":
            messages.append(Warning(str(finding), id="compliance.W002", obj=WHERE))
        else:
            messages.append(Error(str(finding), id="compliance.E002", obj=WHERE))
    return messages


def _database(path: str) -> list[CheckMessage]:
    from compliance.geo import open_geolocator

    try:
        open_geolocator(path).close()
    except (ComplianceError, OSError) as exc:
        return [
            Error(
                f"{WHERE}['geoip_db']: {exc}",
                hint="Download a GeoLite2/GeoIP2 database with MaxMind's geoipupdate, or "
                "remove 'geoip_db' to use the embedded country-level lookup.",
                id="compliance.E004",
                obj=WHERE,
            )
        ]
    return []


def _forwarded_host(options: dict[str, Any]) -> list[CheckMessage]:
    """Django reads the host from ``X-Forwarded-Host`` (``USE_X_FORWARDED_HOST``) while rules
    with ``hosts:`` match ``Host``: behind a proxy that rewrites it, they match nothing."""
    from django.conf import settings

    if not getattr(settings, "USE_X_FORWARDED_HOST", False) or options.get("forwarded_host"):
        return []
    return [
        Warning(
            "USE_X_FORWARDED_HOST is set, but rules with hosts: match the Host header, which "
            "a proxy that writes X-Forwarded-Host may have made its own.",
            hint=f"Add 'forwarded_host': True to {WHERE} (with 'trusted_proxies': the "
            "header is believed only from them).",
            id="compliance.W004",
            obj=WHERE,
        )
    ]


def _is_ours(entry: object) -> bool:
    """Whether a ``MIDDLEWARE`` entry names this middleware, by any of its import paths."""
    if entry == MIDDLEWARE:
        return True
    if not isinstance(entry, str) or not entry.startswith("compliance."):
        return False
    from django.utils.module_loading import import_string

    from compliance.contrib.django.middleware import ComplianceMiddleware

    try:
        return bool(import_string(entry) is ComplianceMiddleware)
    except ImportError:
        return False


def _whitenoise_pages(settings: Any) -> str:
    """The WhiteNoise settings that make it serve HTML pages (files at the site's root, index
    files for directory URLs), named; empty when it serves none of them."""
    named = ("WHITENOISE_ROOT", "WHITENOISE_INDEX_FILE")
    return ", ".join(name for name in named if getattr(settings, name, None))


def _wiring() -> list[CheckMessage]:
    from django.conf import settings

    messages: list[CheckMessage] = []
    if not any(_is_ours(entry) for entry in getattr(settings, "MIDDLEWARE", None) or ()):
        messages.append(
            Warning(
                f"{MIDDLEWARE} is not in MIDDLEWARE: no notices are shown and "
                "request.compliance is not set.",
                id="compliance.W001",
            )
        )
    listed = list(getattr(settings, "MIDDLEWARE", None) or ())
    ours = next((i for i, entry in enumerate(listed) if _is_ours(entry)), None)
    caching = [i for i, entry in enumerate(listed) if entry in _SITE_CACHE]
    if ours is not None and caching and min(caching) < ours:
        messages.append(
            Warning(
                f"{listed[min(caching)]} comes before {listed[ours]} in MIDDLEWARE: the "
                "site cache stores pages with their notices in, and a page served from it "
                "gets them again.",
                hint=f"List {MIDDLEWARE} before Django's cache middleware.",
                id="compliance.W005",
            )
        )
    pages = _whitenoise_pages(settings)
    if ours is not None and pages and _WHITENOISE in listed[:ours]:
        messages.append(
            Warning(
                f"{_WHITENOISE} comes before {listed[ours]} in MIDDLEWARE and serves pages "
                f"({pages}): WhiteNoise answers those requests itself, so their readers "
                "get no notices.",
                hint=f"List {MIDDLEWARE} before WhiteNoise.",
                id="compliance.W006",
            )
        )
    for backend in getattr(settings, "TEMPLATES", None) or ():
        if backend.get("BACKEND") != "django.template.backends.django.DjangoTemplates":
            continue
        processors = (backend.get("OPTIONS") or {}).get("context_processors") or ()
        if REQUEST_PROCESSOR not in processors:
            messages.append(
                Warning(
                    "{% compliance_notices %} needs the request in the template context.",
                    hint=f"Add {REQUEST_PROCESSOR!r} to TEMPLATES' context_processors.",
                    id="compliance.W003",
                )
            )
    return messages
