"""Reports: figures with nm scale bars and a self-contained HTML page."""

from layerscope.report.figures import add_scalebar, figure_to_png, layout_problems, legend_outside, show_image
from layerscope.report.html import Figure, Section, Table, Value, format_with_uncertainty, render_html, render_report

__all__ = ["Figure", "Section", "Table", "Value", "format_with_uncertainty", "render_report", "render_html",
           "figure_to_png", "add_scalebar", "show_image", "legend_outside", "layout_problems"]
