import os
from types import TracebackType

from typing_extensions import Buffer

class Reader:
    ip_version: int
    database_type: str
    closed: bool
    def __init__(self, path: str | bytes | os.PathLike[str]) -> None: ...
    def lookup(self, packed: Buffer, /) -> tuple[int, str | None, bool, tuple[str, ...]] | None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Reader: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
