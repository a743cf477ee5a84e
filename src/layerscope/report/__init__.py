"""Reports: figures with nm scale bars and a self-contained HTML page."""

from layerscope.report.figures import add_scalebar, figure_to_png, show_image
from layerscope.report.html import Figure, Section, Table, render_html, render_report

__all__ = ["Figure", "Section", "Table", "render_report", "render_html", "figure_to_png", "add_scalebar", "show_image"]
