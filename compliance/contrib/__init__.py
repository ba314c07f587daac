"""Framework integrations: Django, Flask, Starlette/FastAPI, and a Prometheus collector.

Each integration is a leaf (nothing in the library imports it) and a thin layer over the
same parts a plain WSGI/ASGI set-up uses: an :class:`~compliance.engine.Engine` and the
middleware's response core. What they share lives here: one way to read settings (the
Django ``COMPLIANCE`` dict, Flask's ``COMPLIANCE_*`` config keys) into an engine and the
middleware options, so a key means the same thing everywhere and a typo is an error, not a
silently ignored setting.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from compliance.errors import ConfigurationError
from compliance.metrics import Snapshot, merge_snapshots

__all__ = [
    "ENGINE_KEYS",
    "ComplianceSettings",
    "merge_snapshots",
    "middleware_option_names",
    "reloads_once_per_engine",
]

ENGINE_KEYS = frozenset({"engine", "rules", "packs", "geoip_db", "variables", "watch"})
"""Keys that choose the engine: a ready ``engine``, or ``rules`` (paths), ``packs``
(bundled pack names), ``geoip_db`` (a MaxMind ``.mmdb``), ``variables`` (site values for
notice placeholders) and ``watch`` (seconds between checks for changed rule files)."""


def middleware_option_names() -> frozenset[str]:
    """The keyword options the WSGI and ASGI middlewares take (``trusted_proxies``,
    ``fail_mode``, ``decision_path``, ...), read from the response core's own settings."""
    from compliance.core import Settings

    parameters = inspect.signature(Settings.from_options).parameters
    return frozenset(name for name in parameters if name not in ("self", "cls"))


def _same(key: str) -> str:
    return key


@dataclass(frozen=True)
class ComplianceSettings:
    """Settings for an integration: how to build the engine, and the middleware options.

    >>> s = ComplianceSettings.from_mapping({"rules": "rules/", "fail_mode": "closed"})
    >>> s.rules, s.options
    (('rules/',), {'fail_mode': 'closed'})
    >>> ComplianceSettings.from_mapping({"fail_mod": "closed"}, where="COMPLIANCE")
    Traceback (most recent call last):
    ...
    compliance.errors.ConfigurationError: COMPLIANCE: unknown key 'fail_mod' (did you mean ...
    """

    engine: Any = None
    """A ready engine (then ``rules``, ``packs``, ``geoip_db``, ``variables`` and ``watch``
    must be absent)."""
    rules: tuple[str, ...] | None = None
    packs: tuple[str, ...] | None = None
    geoip_db: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    watch: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options for :class:`compliance.wsgi.ComplianceMiddleware` /
    :class:`compliance.asgi.ComplianceMiddleware`."""

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        where: str = "compliance settings",
        spell: Callable[[str], str] = _same,
    ) -> ComplianceSettings:
        """Read lower-case keys (the Django dict); ConfigurationError naming ``where`` on an
        unknown key or a value of the wrong kind. ``spell`` writes a key as the user does."""
        known = ENGINE_KEYS | middleware_option_names()
        unknown = sorted(set(values) - known)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = (
                f" (did you mean {spell(close[0])!r}?)"
                if close
                else f"; known keys: {', '.join(spell(k) for k in sorted(known))}"
            )
            raise ConfigurationError(f"{where}: unknown key {spell(key)!r}{hint}")

        def bad(key: str, what: str) -> ConfigurationError:
            return ConfigurationError(f"{where}: {spell(key)!r} must be {what}")

        engine = values.get("engine")
        if engine is not None:
            # A ready engine watches (or not) as it was built: 'watch' would be ignored.
            clash = [k for k in ("rules", "packs", "geoip_db", "variables", "watch") if k in values]
            if clash:
                names = ", ".join(repr(spell(k)) for k in clash)
                raise ConfigurationError(
                    f"{where}: give either {spell('engine')!r} or {names}, not both"
                )
        variables = values.get("variables") or {}
        if not isinstance(variables, Mapping):
            raise bad("variables", "a mapping of variable name to value")
        watch = values.get("watch")
        if watch is not None and (
            isinstance(watch, bool) or not isinstance(watch, int | float) or watch <= 0
        ):
            raise bad("watch", "a number of seconds above 0")
        geoip_db = values.get("geoip_db")
        if geoip_db is not None and not isinstance(geoip_db, str | os.PathLike):
            raise bad("geoip_db", "the path of a MaxMind .mmdb file")
        rules = values.get("rules")
        if rules is not None and not _is_paths(rules):
            raise bad("rules", "a path or a list of paths")
        packs = values.get("packs")
        if isinstance(packs, str):
            packs = [packs]
        if packs is not None and not (
            isinstance(packs, Iterable) and all(isinstance(v, str) for v in packs)
        ):
            raise bad("packs", "a list of bundled pack names, e.g. ['russia']")
        return cls(
            engine=engine,
            rules=None if rules is None else _as_paths(rules),
            packs=None if packs is None else tuple(packs),
            geoip_db=None if geoip_db is None else os.fspath(geoip_db),
            variables=dict(variables),
            watch=None if watch is None else float(watch),
            options={k: v for k, v in values.items() if k not in ENGINE_KEYS},
        )

    @classmethod
    def from_prefixed(
        cls, config: Mapping[str, Any], prefix: str = "COMPLIANCE_", *, where: str = "app.config"
    ) -> ComplianceSettings:
        """Read upper-case prefixed keys (Flask's ``COMPLIANCE_RULES``, ...).

        >>> ComplianceSettings.from_prefixed({"COMPLIANCE_PACKS": ["russia"], "DEBUG": 1}).packs
        ('russia',)
        """
        values = {k[len(prefix) :].lower(): v for k, v in config.items() if k.startswith(prefix)}
        return cls.from_mapping(values, where=where, spell=lambda k: prefix + k.upper())

    def build_engine(self) -> Any:
        """The engine: the one given, else one over ``rules`` and ``packs`` (neither: the
        default bundled pack)."""
        if self.engine is not None:
            return self.engine
        from compliance.engine import Engine

        extra: dict[str, Any] = {}
        if self.packs is not None:
            extra["packs"] = list(self.packs)
        return Engine.from_paths(
            None if self.rules is None else list(self.rules),
            geoip_db=self.geoip_db,
            variables=self.variables or None,
            watch=self.watch,
            **extra,
        )


def _is_paths(value: Any) -> bool:
    if isinstance(value, str | os.PathLike):
        return True
    return isinstance(value, Iterable) and all(isinstance(v, str | os.PathLike) for v in value)


def _as_paths(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def reloads_once_per_engine(
    snapshots: Iterable[tuple[Snapshot, object | None]],
) -> Iterator[Snapshot]:
    """The snapshots of middlewares, each paired with its engine (None: not known), with
    the reloads of an engine already seen taken out: a middleware's snapshot carries its
    engine's reloads, and several middlewares over one engine would count each reload once
    per middleware when added up."""
    seen: set[int] = set()
    engines: list[object] = []  # kept alive while seen, so no other object takes an id
    for snapshot, engine in snapshots:
        if engine is not None:
            if id(engine) in seen:
                snapshot = Snapshot(**{**snapshot, "reloads": {}})
            else:
                seen.add(id(engine))
                engines.append(engine)
        yield snapshot
