"""The Jinja environment of the generated files (templates/), shared by every stage that renders."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["render_template"]


@functools.cache
def _templates() -> jinja2.Environment:
    here = Path(__file__).parent
    folder = here / "templates"
    if not folder.is_dir():  # running from a checkout: templates/ beside codegen/
        folder = here.parent / "templates"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(template: str, **values: Any) -> str:
    """Render `templates/<template>` with `values` (StrictUndefined: a missing value is an error)."""
    return _templates().get_template(template).render(**values)
