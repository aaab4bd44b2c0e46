"""Tags of the chart page: small server-rendered SVG plots (no JavaScript, no CDN, a few hundred bytes
each), and cheap forms of what its rows repeat a hundred times (ledger marks, dates)."""

import datetime as dt
import uuid

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext

register = template.Library()

WIDTH, HEIGHT, PAD = 160, 40, 3
_PLACEHOLDER = str(uuid.UUID(int=0))
_MARK_PARTS = "records.charts.verified_mark"


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


@register.simple_tag(takes_context=True)
def verified_mark(context, obj, verified):
    """The ledger mark of one row, the same HTML as records/_verified.html. A chart has a hundred of them:
    an include and a URL reversal each were most of its template time, so the link and the words are
    worked out once per page and only the row's id changes."""
    parts = context.render_context.get(_MARK_PARTS)
    if parts is None:
        before, after = reverse("ledger:history", args=[_PLACEHOLDER]).split(_PLACEHOLDER)
        parts = (before, after, gettext("Ledger history"), gettext("verified"), gettext("not verified"))
        context.render_context[_MARK_PARTS] = parts
    before, after, title, yes, no = parts
    ok = get_item(verified, obj.pk)
    # The trailing newline is the one the include rendered: the page stays byte for byte the same.
    return format_html(
        '<a class="mark {}" href="{}{}{}" title="{}">{}</a>\n',
        "ok" if ok else "bad",
        before,
        obj.pk,
        after,
        title,
        format_html("✓ {}", yes) if ok else format_html("✗ {}", no),
    )


@register.filter(expects_localtime=True)
def ymd(value):
    """`|date:"Y-m-d"` for the chart's hundreds of dates, without the general formatter (most of a row's
    template time). Datetimes arrive in the reader's time zone, as the date filter gets them."""
    if not isinstance(value, dt.date):
        return ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


@register.filter(expects_localtime=True)
def ymd_hm(value):
    """`|date:"Y-m-d H:i"` the same way, for datetimes."""
    if not isinstance(value, dt.datetime):
        return ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"
