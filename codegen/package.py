"""Finding a built package: the directory `build` wrote, and the import package in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .snapshot import SNAPSHOT_FILENAME

__all__ = ["DEFAULT_OUT_ROOT", "BuiltPackage", "PackageNotFound", "locate_package"]

DEFAULT_OUT_ROOT = Path("generated")


class PackageNotFound(Exception):
    """No built package where one was expected."""


@dataclass(frozen=True)
class BuiltPackage:
    """A package `mcp-codegen build` wrote: `root/pyproject.toml`, `root/<name>/...`."""

    root: Path
    name: str

    @property
    def import_dir(self) -> Path:
        """The import package's directory."""
        return self.root / self.name

    @property
    def snapshot_path(self) -> Path:
        """The snapshot the package was rendered from."""
        return self.root / SNAPSHOT_FILENAME


def locate_package(directory: Path | str | None = None) -> BuiltPackage:
    """The package in `directory`, or the only one under `generated/` when none is given.

    Raises:
        PackageNotFound: nothing built there, or several packages and none chosen.
    """
    if directory is None:
        found = sorted(path.parent for path in DEFAULT_OUT_ROOT.glob(f"*/{SNAPSHOT_FILENAME}"))
        if not found:
            raise PackageNotFound(
                f"no built package under {DEFAULT_OUT_ROOT}/; run `mcp-codegen build` or pass --package DIR"
            )
        if len(found) > 1:
            names = ", ".join(str(path) for path in found)
            raise PackageNotFound(
                f"several built packages ({names}); choose one with --package DIR"
            )
        directory = found[0]
    root = Path(directory)
    if not (root / SNAPSHOT_FILENAME).is_file():
        raise PackageNotFound(
            f"{root}: not a package built by mcp-codegen (no {SNAPSHOT_FILENAME}); "
            "run `mcp-codegen build --out DIR` first"
        )
    imports = sorted(path.parent.parent.name for path in root.glob("*/_runtime/__init__.py"))
    if len(imports) != 1:
        raise PackageNotFound(
            f"{root}: expected one import package with a _runtime/, found {len(imports)}"
        )
    return BuiltPackage(root=root, name=imports[0])
