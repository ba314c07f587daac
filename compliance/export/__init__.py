"""Compile rule files into configuration for edge engines: nginx and Cloudflare Workers.

::

    from compliance.export import export_cloudflare, export_nginx, write_export

    result = export_nginx(["rules/"], geoip_db="/var/lib/GeoIP/GeoLite2-City.mmdb")
    write_export(result, "edge/nginx")

Both exporters share one intermediate form (:mod:`compliance.export.plan`). What a target
cannot express is listed in :attr:`Export.omissions` (and in the README written beside the
configuration), never dropped in silence. Nothing in the library imports this package.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from compliance.errors import ConfigurationError

from .plan import EdgePlan, Omission, build_plan

__all__ = [
    "Export",
    "export_cloudflare",
    "export_nginx",
    "load_plan",
    "stale_files",
    "write_export",
]


@dataclass
class Export:
    """Generated files (name to text) and what the target could not express."""

    target: str
    files: dict[str, str]
    omissions: list[Omission] = field(default_factory=list)
    valid_until: dt.date | None = None
    """nginx: the first day the baked-in effective dates are wrong (regenerate before it)."""
    notes: list[str] = field(default_factory=list)
    """Messages for the operator (stderr), besides the omissions."""


def load_plan(
    paths: Iterable[str | os.PathLike[str]] | None,
    *,
    target: Any,
    packs: Sequence[str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> EdgePlan:
    """Load rule files (and named packs) as the engine would, and build the edge plan."""
    from compliance.engine import Engine

    kwargs: dict[str, Any] = {}
    if packs:
        kwargs["packs"] = list(packs)
    path_list = None if paths is None else list(paths)
    engine = Engine.from_paths(path_list, variables=variables, **kwargs)
    try:
        ruleset = engine.ruleset
        rules = [loaded.rule for loaded in ruleset.rules]
        return build_plan(rules, ruleset.regions, target=target, variables=engine.variables)
    finally:
        engine.close()


def export_nginx(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    *,
    geoip_db: str | os.PathLike[str],
    at: dt.date | None = None,
    packs: Sequence[str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Export:
    """nginx configuration (``http.conf``, ``location.conf``, ``README.md``) for the rules
    in force on ``at`` (default: today, UTC)."""
    from .nginx import render_nginx

    plan = load_plan(paths, target="nginx", packs=packs, variables=variables)
    return render_nginx(plan, geoip_db=os.fspath(geoip_db), at=at or _today())


def export_cloudflare(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    *,
    packs: Sequence[str] | None = None,
    variables: Mapping[str, Any] | None = None,
    name: str = "compliance-edge",
) -> Export:
    """A Cloudflare Worker (``worker.mjs``, ``wrangler.toml``, ``README.md``)."""
    from .cloudflare import render_cloudflare

    plan = load_plan(paths, target="cloudflare", packs=packs, variables=variables)
    return render_cloudflare(plan, name=name)


def stale_files(export: Export, directory: str | os.PathLike[str]) -> list[str]:
    """Names of the files in ``directory`` that differ from (or lack) the export's."""
    root = Path(directory)
    stale = []
    for name, text in export.files.items():
        target = root / name
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            stale.append(name)
            continue
        if current != text:
            stale.append(name)
    return stale


_GENERATED: Final = "compliance export"
"""What the first lines of every file an export writes say (and what one it overwrites must
say): no file of the site's own is ever replaced."""


def write_export(export: Export, directory: str | os.PathLike[str]) -> list[Path]:
    """Write the export's files into ``directory`` (created if needed); return their paths.
    Raises :class:`~compliance.errors.ConfigurationError`, writing nothing, when a file
    there of the same name was not written by an export (the site's own ``README.md``, say)."""
    if not os.fspath(directory):
        raise ConfigurationError("the output directory is empty: name one (--output DIR)")
    root = Path(directory)
    for name in export.files:
        target = root / name
        if target.is_file() and not _generated(target):
            raise ConfigurationError(
                f"{target} exists and was not written by compliance export: choose an "
                "output directory of its own (nothing was written)"
            )
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in export.files.items():
        target = root / name
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temporary, target)
        written.append(target)
    return written


def _generated(path: Path) -> bool:
    """Whether ``path``'s first lines say an export wrote it."""
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            head = [file.readline(512) for _ in range(4)]
    except OSError:
        return False
    return any(_GENERATED in line for line in head)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
