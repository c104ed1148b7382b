"""Charts drawn on the server as inline SVG: no script, nothing fetched at run time.

Each function takes plain numbers and labels and returns `Markup` with every text escaped.
The colours follow the status badges (formatting.BADGE).
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup, escape

STATUS_COLOURS = {"green": "#28a745", "yellow": "#ffc107", "red": "#dc3545", "black": "#343a40", None: "#adb5bd"}
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11"'


def colour(status: str | None) -> str:
    return STATUS_COLOURS.get(status, "#6c757d")


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    # `label` is escaped here; `body` pieces are built with escape() where they hold text.
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(label)}" {FONT}>'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 times a power of ten)."""
    if value <= 0:
        return 1
    power: float = 1
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def stacked_columns(
    labels: list[str],
    series: dict[str, list[float]],
    label: str,
    height: int = 220,
    width: int = 720,
    percent: bool = False,
) -> Markup:
    """One column per label, stacked by series (bottom to top in dict order); a legend on top."""
    left, right, top, bottom = 40, 8, 22, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top_value = 100 if percent else _nice_max(max(totals, default=0))
    body = _legend(list(series), left, 12)
    body += _y_axis(left, top, plot_w, plot_h, top_value, "%" if percent else "")
    slot = plot_w / n
    bar = max(slot * 0.72, 1)
    for i, text in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y: float = top + plot_h
        total = totals[i] or 1
        for name, values in series.items():
            value = values[i]
            shown = value * 100 / total if percent else value
            h = plot_h * shown / top_value if top_value else 0
            if h <= 0:
                continue
            y -= h
            tip = f"{text} · {name}: {value:g}" + (f" ({shown:.0f}%)" if percent else "")
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour(name)}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if _labelled(i, n):
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" fill="#6c757d">'
                f"{escape(text)}</text>"
            )
    return _svg(width, height, body, label)


def columns(
    labels: list[str],
    values: list[float],
    label: str,
    fill: str = "#343a40",
    height: int = 160,
    width: int = 720,
    trend: list[float] | None = None,
) -> Markup:
    """Plain columns, with an optional trend line (e.g. a moving average) drawn over them."""
    left, right, top, bottom = 40, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    top_value = _nice_max(max(list(values) + list(trend or []), default=0))
    body = _y_axis(left, top, plot_w, plot_h, top_value, "")
    slot = plot_w / n
    bar = max(slot * 0.6, 1)
    for i, (text, value) in enumerate(zip(labels, values, strict=False)):
        x = left + i * slot + (slot - bar) / 2
        h = plot_h * value / top_value
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{fill}"><title>{escape(f"{text}: {value:g}")}</title></rect>'
        )
        if _labelled(i, n):
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" fill="#6c757d">'
                f"{escape(text)}</text>"
            )
    if trend:
        points = " ".join(
            f"{left + i * slot + slot / 2:.1f},{top + plot_h - plot_h * v / top_value:.1f}" for i, v in enumerate(trend)
        )
        body.append(
            f'<polyline points="{points}" fill="none" stroke="#007bff" stroke-width="2">'
            f"<title>4-week average</title></polyline>"
        )
    return _svg(width, height, body, label)


def bars(
    labels: list[str],
    values: list[float | None],
    label: str,
    fills: list[str] | None = None,
    unit: str = "",
    height: int = 180,
    width: int = 480,
) -> Markup:
    """Columns with their value written over each, one colour per column (`fills`, default dark
    grey); None draws no column and writes "n/a". Labels are cut short, in full on hover."""
    left, right, top, bottom = 40, 8, 18, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    top_value = _nice_max(max((v for v in values if v is not None), default=0))
    body = _y_axis(left, top, plot_w, plot_h, top_value, unit)
    slot = plot_w / n
    bar = max(slot * 0.6, 1)
    for i, (text, value) in enumerate(zip(labels, values, strict=False)):
        x = left + i * slot + (slot - bar) / 2
        shown = "n/a" if value is None else f"{value:.1f}{unit}"
        h = 0 if value is None else plot_h * value / top_value
        fill = fills[i] if fills and i < len(fills) else "#343a40"
        if h > 0:
            body.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{escape(fill)}"><title>{escape(f"{text}: {shown}")}</title></rect>'
            )
        body.append(
            f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle">{escape(shown)}</text>'
            f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" fill="#6c757d">'
            f"<title>{escape(text)}</title>{escape(_short(text, max(int(slot / 7), 3)))}</text>"
        )
    return _svg(width, height, body, label)


def share_bars(rows: list[tuple[str, dict[str, int]]], order: list[str], label: str, width: int = 520) -> Markup:
    """One horizontal 100% bar per row (e.g. per plan), split by status, with the row's total."""
    left, right, row_h, top = 120, 50, 22, 20
    height = top + row_h * max(len(rows), 1) + 6
    plot_w = width - left - right
    body = _legend(order, left, 12)
    for r, (name, counts) in enumerate(rows):
        y = top + r * row_h
        total = sum(counts.values())
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(_short(name, 18))}</text>')
        x: float = left
        for status in order:
            value = counts.get(status, 0)
            if not value:
                continue
            w = plot_w * value / total
            tip = f"{name} · {status}: {value} of {total} ({value * 100 / total:.0f}%)"
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{colour(status)}"><title>{escape(tip)}</title></rect>'
            )
            x += w
        body.append(f'<text x="{left + plot_w + 6}" y="{y + 14}" fill="#6c757d">{total}</text>')
    return _svg(width, height, body, label)


def hbars(
    rows: list[tuple[str, dict[str, int]]],
    order: list[tuple[str, str]],
    label: str,
    width: int = 560,
    flagged: set[str] | None = None,
) -> Markup:
    """Horizontal stacked bars on a shared scale: `order` is (key, colour) per segment."""
    left, right, row_h, top = 170, 40, 22, 20
    height = top + row_h * max(len(rows), 1) + 6
    plot_w = width - left - right
    top_value = _nice_max(max((sum(c.get(k, 0) for k, _ in order) for _, c in rows), default=0))
    body = []
    x: float = left
    for key, fill in order:  # legend
        body.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{fill}"></rect>'
            f'<text x="{x + 14}" y="13">{escape(key)}</text>'
        )
        x += 24 + 7 * len(key)
    for r, (name, counts) in enumerate(rows):
        y = top + r * row_h
        weight = ' font-weight="bold" fill="#dc3545"' if flagged and name in flagged else ""
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end"{weight}>{escape(_short(name, 26))}</text>')
        x = left
        for key, fill in order:
            value = counts.get(key, 0)
            if not value:
                continue
            w = plot_w * value / top_value
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{fill}">'
                f"<title>{escape(f'{name} · {key}: {value}')}</title></rect>"
            )
            x += w
        total = sum(counts.get(k, 0) for k, _ in order)
        body.append(f'<text x="{x + 4:.1f}" y="{y + 14}" fill="#6c757d">{total}</text>')
    return _svg(width, height, body, label)


def health_timeline(
    changes: list[tuple[datetime, str]],
    now: datetime,
    label: str,
    scores: list[tuple[datetime, float]] | None = None,
    width: int = 720,
) -> Markup:
    """The status over time as a step chart (one lane per status, worst at the bottom), with
    the score (0-100) as a line over it when `scores` is given. `changes` oldest first."""
    lanes = ["green", "yellow", "red", "black"]
    left, right, top, bottom = 56, 36 if scores else 10, 10, 24
    height = 150
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [at for at, _ in changes] + [at for at, _ in (scores or [])]
    if not times:
        return Markup("")
    start = min(times)
    span = max((now - start).total_seconds(), 1.0)

    def x_of(at: datetime) -> float:
        return left + plot_w * max(0.0, (at - start).total_seconds()) / span

    lane_h = plot_h / len(lanes)

    def y_of(status: str) -> float:
        index = lanes.index(status) if status in lanes else len(lanes) - 1
        return top + lane_h * index + lane_h / 2

    body = []
    for status in lanes:
        y = y_of(status)
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"></line>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{colour(status)}">'
            f"{status}</text>"
        )
    known = [(at, status) for at, status in changes if status in lanes]
    for i, (at, status) in enumerate(known):
        end = known[i + 1][0] if i + 1 < len(known) else now
        x1, x2, y = x_of(at), x_of(end), y_of(status)
        tip = f"{status} from {at:%Y-%m-%d}" + (f" to {end:%Y-%m-%d}" if i + 1 < len(known) else " until now")
        body.append(
            f'<line x1="{x1:.1f}" x2="{max(x2, x1 + 1):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour(status)}" stroke-width="6" stroke-linecap="butt">'
            f"<title>{escape(tip)}</title></line>"
        )
        if i + 1 < len(known):
            body.append(
                f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y_of(known[i + 1][1]):.1f}" '
                f'stroke="#adb5bd" stroke-dasharray="2,2"></line>'
            )
    if scores:
        points = " ".join(
            f"{x_of(at):.1f},{top + plot_h * (1 - max(0, min(100, s)) / 100):.1f}"
            for at, s in sorted(scores, key=lambda p: p[0])
        )
        body.append(
            f'<polyline class="score" points="{points}" fill="none" stroke="#007bff" '
            f'stroke-width="1.5"><title>score</title></polyline>'
            f'<text x="{left + plot_w + 4}" y="{top + 8}" fill="#007bff">100</text>'
            f'<text x="{left + plot_w + 4}" y="{top + plot_h}" fill="#007bff">0</text>'
        )
    for at, anchor in ((start, "start"), (start + (now - start) / 2, "middle"), (now, "end")):
        body.append(
            f'<text x="{x_of(at):.1f}" y="{height - 6}" text-anchor="{anchor}" fill="#6c757d">'
            f"{at.astimezone(UTC):%Y-%m-%d}</text>"
        )
    return _svg(width, height, body, label)


LINE_COLOURS = ("#007bff", "#6f42c1", "#20c997", "#fd7e14", "#6c757d")


def lines(
    labels: list[str], series: dict[str, list[float | None]], label: str, height: int = 170, width: int = 720
) -> Markup:
    """One line per series over the same labels (e.g. days); None leaves a gap; a legend on top."""
    left, right, top, bottom = 40, 8, 22, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    known = [v for values in series.values() for v in values if v is not None]
    top_value = _nice_max(max(known, default=0))
    palette = dict(zip(series, LINE_COLOURS * (len(series) // len(LINE_COLOURS) + 1), strict=False))
    body = _legend(list(series), left, 12, palette)
    body += _y_axis(left, top, plot_w, plot_h, top_value, "")
    step = plot_w / max(n - 1, 1)
    for name, values in series.items():
        runs: list[list[str]] = []
        current: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                if current:
                    runs.append(current)
                current = []
            else:
                current.append(f"{left + i * step:.1f},{top + plot_h - plot_h * value / top_value:.1f}")
        if current:
            runs.append(current)
        for points in runs:
            shape = (
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{palette[name]}" stroke-width="1.8">'
                if len(points) > 1
                else f'<circle cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="2" '
                f'fill="{palette[name]}">'
            )
            body.append(shape + f"<title>{escape(name)}</title>" + ("</polyline>" if len(points) > 1 else "</circle>"))
    for i, text in enumerate(labels):
        if _labelled(i, n):
            anchor = "end" if i == n - 1 else "middle"  # the last label ends at the plot's edge, not past it
            body.append(
                f'<text x="{left + i * step:.1f}" y="{height - 10}" text-anchor="{anchor}" fill="#6c757d">'
                f"{escape(text)}</text>"
            )
    return _svg(width, height, body, label)


def _labelled(i: int, n: int) -> bool:
    """About eight labels along an axis, the last always, none crowding it."""
    step = 1 if n <= 12 else max(1, n // 8)
    return i == n - 1 or (i % step == 0 and n - 1 - i >= step)


def _legend(names: list[str], x: float, y: float, palette: dict[str, str] | None = None) -> list[str]:
    out = []
    for name in names:
        fill = palette[name] if palette else colour(name)
        out.append(
            f'<rect x="{x:.0f}" y="{y - 9}" width="10" height="10" fill="{fill}"></rect>'
            f'<text x="{x + 14:.0f}" y="{y}">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return out


def _y_axis(left: float, top: float, plot_w: float, plot_h: float, top_value: float, unit: str) -> list[str]:
    out = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e9ecef"></line>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#6c757d">'
            f"{top_value * fraction:g}{unit}</text>"
        )
    return out


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
