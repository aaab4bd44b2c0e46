"""Small server-rendered SVG plots: no JavaScript, no CDN, a few hundred bytes each."""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

WIDTH, HEIGHT, PAD = 160, 40, 3


@register.simple_tag
def sparkline(observations, label=""):
    values = [float(o.value_decimal) for o in observations if o.value_decimal is not None][-20:]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / (len(values) - 1)
    points = [
        (PAD + i * step, HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD)) for i, v in enumerate(values)
    ]
    path = format_html_join(" ", "{},{}", ((f"{x:.1f}", f"{y:.1f}") for x, y in points))
    last_x, last_y = points[-1]
    return format_html(
        '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        '<polyline fill="none" stroke="#1f6f8b" stroke-width="1.5" points="{}"/>'
        '<circle cx="{}" cy="{}" r="2.5" fill="#c0392b"/></svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        path,
        f"{last_x:.1f}",
        f"{last_y:.1f}",
    )


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
