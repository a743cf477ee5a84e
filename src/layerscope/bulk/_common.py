"""Small helpers shared by the bulk-spectroscopy modules (plots, flags)."""

from __future__ import annotations

from typing import Any


def plt():
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


class FiguresOnce:
    """Mixin of the bulk results: ``figures()`` draws once (``_make_figures``) and reuses the list."""

    def figures(self) -> list:
        """The report figures (drawn on first use, then cached on the result)."""
        if getattr(self, "_figures", None) is None:
            self._figures = self._make_figures()
        return self._figures


def flag(code: str, message: str, **where: Any) -> dict[str, Any]:
    """A flag for ``summary.json``: a short code, a one-line message, and where it applies."""
    return {"code": code, "message": message, **where}


def flag_line(flags: list[dict[str, Any]], limit: int = 5) -> str:
    """The flags as a short suffix for the CLI line (empty when there are none)."""
    if not flags:
        return ""
    codes = sorted({f["code"] for f in flags})
    more = f" (+{len(codes) - limit})" if len(codes) > limit else ""
    return "; flags: " + ", ".join(codes[:limit]) + more


def short_list(names, limit: int = 8, width: int = 30) -> str:
    """Column names for a one-line error message: at most ``limit`` names of at most ``width`` characters."""
    names = [str(n) for n in names]
    shown = [n if len(n) <= width else n[:width - 3] + "..." for n in names[:limit]]
    more = f", ... ({len(names)} columns)" if len(names) > limit else ""
    return "[" + ", ".join(shown) + more + "]"
