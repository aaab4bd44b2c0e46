"""Template helpers of the audit console: the open-alert count in its header, and SVG drawings."""

from django import template
from django.utils.safestring import mark_safe

from audit import selectors, svgplot

register = template.Library()


@register.simple_tag
def open_alerts() -> int:
    """Open alerts, for the header of every console page (one indexed count)."""
    return selectors.open_alert_count()


@register.simple_tag
def time_plot(plot: dict, metric: str, title: str, unit: str = ""):
    # svgplot escapes every text it places in the markup.
    return mark_safe(  # noqa: S308
        svgplot.line_plot(plot[metric], start=plot["start"], end=plot["end"], title=title, unit=unit)
    )


@register.simple_tag
def tree_drawing(nodes, tier_names):
    return mark_safe(svgplot.tier_tree(nodes, tier_names=tier_names))  # noqa: S308
