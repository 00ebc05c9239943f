"""Plotly figures (plain dicts: `data` + `layout`) for the analysis pages, and one chart drawn
as SVG on the server (`learning_curve_svg`).

Each builder takes a run's stored result and returns a figure for `analysis/_chart.html`;
the page shows the same numbers in a table beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

HLP_COLOR = "#2b8a3e"
MODEL_COLOR = "#3b5bdb"
BASELINE_COLOR = "#adb5bd"
A_COLOR = "#868e96"
B_COLOR = "#e8590c"


def alpha_by_version(
    versions: list[dict],
    *,
    key: str = "alpha",
    ci_key: str = "alpha_ci",
    title: str = "Krippendorff's alpha per guideline version (95% interval)",
) -> dict:
    """Krippendorff's alpha per guideline version with its 95% interval, against the 0.8 and
    0.667 reference lines. versions: the agreement result's `by_guideline_version` rows;
    key/ci_key: where the alpha and its interval are (span projects: `token_alpha`,
    `token_alpha_ci`)."""
    rows = [v for v in versions if v.get(key) is not None]
    x = [f"v{v['version']}" for v in rows]
    y = [v[key] for v in rows]
    upper = [(v[ci_key][1] - v[key]) if v.get(ci_key) else 0 for v in rows]
    lower = [(v[key] - v[ci_key][0]) if v.get(ci_key) else 0 for v in rows]
    # The axis holds every interval whole, 0 (chance) and 1 (perfect agreement).
    ends = [*y, *(v[ci_key][0] for v in rows if v.get(ci_key)),
            *(v[ci_key][1] for v in rows if v.get(ci_key))]  # fmt: skip
    y_range = [min([0.0, *ends]) - 0.05, max([1.0, *ends]) + 0.05]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+lines",
                "x": x,
                "y": y,
                "name": "alpha",
                "error_y": {"type": "data", "array": upper, "arrayminus": lower, "visible": True},
            }
        ],
        "layout": {
            "title": {"text": title},
            "yaxis": {"title": {"text": "alpha"}, "range": y_range},
            "xaxis": {"title": {"text": "guideline version"}, "type": "category"},
            "shapes": [
                {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": level, "y1": level,
                 "line": {"dash": "dot", "color": color, "width": 1}}
                for level, color in ((0.8, HLP_COLOR), (0.667, "#e67700"))
            ],
        },
    }  # fmt: skip


def span_f1_per_label(per_label: list[dict]) -> dict:
    """Span F1 per entity type, exact and partial (overlap) side by side.

    per_label: the span agreement result's rows `{label, span_f1, span_f1_partial}`; a type
    nobody marked on a shared item has no bar.
    """
    labels = [str(row["label"]) for row in per_label]

    def bars(key: str, name: str, color: str) -> dict:
        values = [row.get(key) for row in per_label]
        return {
            "type": "bar",
            "name": name,
            "x": labels,
            "y": values,
            "marker": {"color": color},
            "text": ["" if v is None else f"{v:.2f}" for v in values],
            "textposition": "outside",
            "hovertemplate": f"%{{x}}: %{{y:.3f}} {name}<extra></extra>",
        }

    return {
        "data": [
            bars("span_f1", "exact (same start, end, type)", MODEL_COLOR),
            bars("span_f1_partial", "partial (same type, overlapping)", BASELINE_COLOR),
        ],
        "layout": {
            "title": {"text": "Span F1 per entity type (mean over annotator pairs)"},
            "barmode": "group",
            "yaxis": {"title": {"text": "span F1"}, "range": [0, 1.1]},
            "xaxis": {"type": "category", "title": {"text": "entity type"}},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def kappa_heatmap(names: list[str], matrix: list[list]) -> dict:
    """Cohen's kappa per annotator pair, -1..1 (None where a pair shares too few items)."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": names,
                "y": names,
                "z": matrix,
                "colorscale": "RdBu",
                "reversescale": True,  # blue: agreement, red: disagreement
                "hoverongaps": False,
                "zmin": -1,
                "zmax": 1,
            }
        ],
        "layout": {
            "title": {"text": "Cohen's kappa per annotator pair"},
            "xaxis": {"title": {"text": "annotator"}, "type": "category"},
            "yaxis": {"title": {"text": "annotator"}, "type": "category", "autorange": "reversed"},
            "margin": {"t": 40, "r": 20, "b": 110, "l": 110},
        },
    }


def annotator_confusion(labels: list[str], matrix: list[list], annotator: str) -> dict:
    """One annotator's labels (rows) against the others' labels of the same items (columns)."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": matrix,
                # Counts start at 0: a cell of 5 is never drawn as empty.
                "zmin": 0,
                "zmax": max([1, *(max(row) for row in matrix)]),
                "colorscale": [[0, "#f1f3f5"], [1, MODEL_COLOR]],
            }
        ],
        "layout": {
            "title": {"text": f"{annotator} (rows) vs the others (columns)"},
            "xaxis": {"title": {"text": "label by the others"}, "type": "category"},
            "yaxis": {
                "title": {"text": f"label by {annotator}"},
                "type": "category",
                "autorange": "reversed",
            },
        },
    }


def _percent_axis(title: str) -> dict:
    return {"title": {"text": title}, "range": [0, 1.05], "tickformat": ".0%"}


def accuracy_bars(result: dict) -> dict:
    """Majority-class baseline, model and HLP side by side."""
    names, values, colors = [], [], []
    for name, value, color in (
        ("majority-class baseline", result.get("majority_class"), BASELINE_COLOR),
        (f"model ({result.get('model_name')})", result.get("model"), MODEL_COLOR),
        (f"HLP ({result.get('hlp_source')})", result.get("hlp"), HLP_COLOR),
    ):
        if value is not None:
            names.append(name)
            values.append(value)
            colors.append(color)
    return {
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": values,
                "marker": {"color": colors},
                "text": [f"{v:.1%}" for v in values],
                "textposition": "outside",
                "hovertemplate": "%{x}: %{y:.2%}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Accuracy against the final labels"},
            "yaxis": _percent_axis("accuracy"),
            "showlegend": False,
        },
    }


def per_class_bars(result: dict) -> dict:
    """HLP and model accuracy per class (recall on items whose reference is the class)."""
    classes = result.get("classes", [])
    hlp = (result.get("hlp_consensus") or {}).get("per_class") or []
    data = [
        {
            "type": "bar",
            "name": "HLP (vs others' consensus)",
            "x": classes,
            "y": [row["accuracy"] for row in hlp],
            "marker": {"color": HLP_COLOR},
        }
    ]
    if result.get("model_per_class"):
        data.append(
            {
                "type": "bar",
                "name": f"model ({result.get('model_name')})",
                "x": classes,
                "y": [row["accuracy"] for row in result["model_per_class"]],
                "marker": {"color": MODEL_COLOR},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Accuracy per class"},
            "barmode": "group",
            "yaxis": _percent_axis("accuracy"),
            "xaxis": {"type": "category"},
            "legend": {"orientation": "h", "y": -0.2},
        },
    }


def annotator_quality(per_annotator: list[dict]) -> dict | None:
    """Agreement with the others (HLP) against median seconds per item, one dot per person.

    per_annotator: the baselines result's rows, each given `number` (its row in the table
    beside the chart). Dots are numbered rather than named, so names never overlap; hovering
    names the person. None when no annotator has both figures (imported annotations carry no
    time), for the page to say so instead of drawing empty axes.
    """
    rows = [r for r in per_annotator if r.get("hlp") is not None and r.get("seconds_per_item")]
    if not rows:
        return None
    sizes = [r["n"] for r in rows]
    biggest = max(sizes)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": [r["seconds_per_item"] for r in rows],
                "y": [r["hlp"] for r in rows],
                "text": [str(r["number"]) for r in rows],
                "textposition": "middle center",
                "textfont": {"color": "#fff", "size": 11},
                "marker": {
                    "size": [18 + 14 * (s / biggest) ** 0.5 for s in sizes],
                    "color": HLP_COLOR,
                    "opacity": 0.85,
                    "line": {"color": "#fff", "width": 1},
                },
                "customdata": [[r["annotator"], r["n"]] for r in rows],
                "hovertemplate": (
                    "#%{text} %{customdata[0]}<br>%{y:.1%} agreement<br>%{x:.1f} s per item"
                    "<br>%{customdata[1]} annotations<extra></extra>"
                ),
            }
        ],
        "layout": {
            "title": {"text": "Annotator quality: agreement vs speed"},
            "xaxis": {"title": {"text": "median seconds per item"}, "rangemode": "tozero"},
            "yaxis": {
                **_percent_axis("agreement with the others' consensus"),
                # Zoom to where the dots are, but never cut off the top.
                "range": [max(0.0, min(r["hlp"] for r in rows) - 0.15), 1.05],
            },
            "showlegend": False,
        },
    }


def confusion_heatmap(labels: list[str], matrix: list[list], *, title: str, rows: str,
                      columns: str) -> dict:  # fmt: skip
    """Counts as a heatmap; rows top to bottom in label order, each cell annotated."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": matrix,
                # Counts start at 0, so the smallest count is not drawn as an empty cell.
                "zmin": 0,
                "zmax": max([1, *(max(row) for row in matrix if row)]),
                "colorscale": [[0, "#f1f3f5"], [1, "#3b5bdb"]],
                "text": [[f"{v:g}" for v in row] for row in matrix],
                "texttemplate": "%{text}",
                "hovertemplate": f"{rows}: %{{y}}<br>{columns}: %{{x}}<br>%{{z}}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": columns}, "type": "category", "side": "bottom"},
            "yaxis": {"title": {"text": rows}, "type": "category", "autorange": "reversed"},
        },
    }


def _errors(rows: list[dict], key: str, ci_key: str) -> dict:
    """Plotly error bars of each row's `key` from its 95% interval `ci_key` (0 without one)."""
    upper = [(r[ci_key][1] - r[key]) if r.get(ci_key) and r.get(key) is not None else 0
             for r in rows]  # fmt: skip
    lower = [(r[key] - r[ci_key][0]) if r.get(ci_key) and r.get(key) is not None else 0
             for r in rows]  # fmt: skip
    return {"type": "data", "array": upper, "arrayminus": lower, "visible": True}


def slice_bars(
    rows: list[dict], field: str, *, model_key: str = "model_accuracy", measure: str = "accuracy"
) -> dict:
    """Model accuracy (span projects: `model_key="model_f1"`, `measure="span F1"`) and HLP
    per slice of one field, with 95% intervals."""
    values = [str(r["value"]) for r in rows]
    data = [
        {
            "type": "bar",
            "name": "HLP",
            "x": values,
            "y": [r["hlp"] for r in rows],
            "error_y": _errors(rows, "hlp", "hlp_ci"),
            "marker": {"color": HLP_COLOR},
        }
    ]
    if any(r[model_key] is not None for r in rows):
        data.append(
            {
                "type": "bar",
                "name": f"model {measure}",
                "x": values,
                "y": [r[model_key] for r in rows],
                "error_y": _errors(rows, model_key, "model_ci"),
                "marker": {"color": MODEL_COLOR},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Model {measure} vs HLP per {field} (95% interval)"},
            "barmode": "group",
            "yaxis": _percent_axis(measure),
            "xaxis": {"type": "category", "title": {"text": field}},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def span_f1_bars(result: dict) -> dict:
    """A span project's model span F1 and HLP side by side, with their 95% intervals."""
    rows = [
        {"name": f"model ({result.get('model_name')})", "f1": (result.get("model") or {}).get("f1"),
         "ci": (result.get("model") or {}).get("ci"), "color": MODEL_COLOR},
        {"name": f"HLP ({result.get('hlp_source')})", "f1": result.get("hlp"),
         "ci": result.get("hlp_ci"), "color": HLP_COLOR},
    ]  # fmt: skip
    rows = [r for r in rows if r["f1"] is not None]
    return {
        "data": [
            {
                "type": "bar",
                "x": [r["name"] for r in rows],
                "y": [r["f1"] for r in rows],
                "error_y": _errors(rows, "f1", "ci"),
                "marker": {"color": [r["color"] for r in rows]},
                "text": [f"{r['f1']:.1%}" for r in rows],
                "textposition": "inside",
                "insidetextanchor": "middle",
                "hovertemplate": "%{x}: %{y:.2%}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Exact span F1 (95% interval)"},
            "yaxis": _percent_axis("span F1"),
            "showlegend": False,
        },
    }


def span_type_bars(per_type: list[dict], model_name: str | None) -> dict:
    """HLP and model span F1 per entity type with 95% intervals.

    per_type: rows `{label, hlp, hlp_ci, model, model_ci}` (the span baselines result's)."""
    labels = [str(r["label"]) for r in per_type]
    data = [
        {
            "type": "bar",
            "name": "HLP (vs others' consensus)",
            "x": labels,
            "y": [r["hlp"] for r in per_type],
            "error_y": _errors(per_type, "hlp", "hlp_ci"),
            "marker": {"color": HLP_COLOR},
        }
    ]
    if any(r.get("model") is not None for r in per_type):
        data.append(
            {
                "type": "bar",
                "name": f"model ({model_name})",
                "x": labels,
                "y": [r.get("model") for r in per_type],
                "error_y": _errors(per_type, "model", "model_ci"),
                "marker": {"color": MODEL_COLOR},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Span F1 per entity type (95% interval)"},
            "barmode": "group",
            "yaxis": _percent_axis("span F1"),
            "xaxis": {"type": "category", "title": {"text": "entity type"}},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def drift_histogram(check: dict, label_a: str, label_b: str) -> dict:
    """Shares per bin (or category) of batch A and batch B."""
    histogram = check["histogram"]
    return {
        "data": [
            {
                "type": "bar",
                "name": f"A: {label_a}",
                "x": histogram["bins"],
                "y": histogram["a"],
                "marker": {"color": A_COLOR},
            },
            {
                "type": "bar",
                "name": f"B: {label_b}",
                "x": histogram["bins"],
                "y": histogram["b"],
                "marker": {"color": B_COLOR},
            },
        ],
        "layout": {
            "title": {"text": check["name"]},
            "barmode": "group",
            "height": 320,
            "yaxis": {"title": {"text": "share of items"}, "tickformat": ".0%"},
            "xaxis": {"type": "category"},
            "legend": {"orientation": "h", "y": -0.3},
        },
    }


def anchoring_accuracy_bars(block: dict) -> dict | None:
    """Annotators' accuracy against the gold or reviewed labels when the suggestion shown was
    right, wrong, or absent (the agreement report's `anchoring` block), with 95% intervals."""
    accuracy = block.get("accuracy")
    if not accuracy:
        return None
    rows = [
        {"name": name, **accuracy[key]}
        for key, name in (
            ("suggestion_right", "suggestion right"),
            ("suggestion_wrong", "suggestion wrong"),
            ("no_suggestion", "no suggestion"),
        )
        if accuracy[key]["rate"] is not None
    ]
    if not rows:
        return None
    colors = {"suggestion right": HLP_COLOR, "suggestion wrong": B_COLOR}
    return {
        "data": [
            {
                "type": "bar",
                "x": [r["name"] for r in rows],
                "y": [r["rate"] for r in rows],
                "marker": {"color": [colors.get(r["name"], BASELINE_COLOR) for r in rows]},
                "error_y": _errors(rows, "rate", "ci"),
                "text": [f"{r['rate']:.1%}" for r in rows],
                "textposition": "inside",  # outside, the error bars would cross it
                "insidetextanchor": "start",
                "textfont": {"color": "#fff"},
                "customdata": [r["n"] for r in rows],
                "hovertemplate": "%{x}: %{y:.1%} of %{customdata} annotations<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Annotators' accuracy by the suggestion they were shown"},
            "yaxis": _percent_axis("accuracy against gold or reviewed labels"),
            "showlegend": False,
        },
    }


@dataclass(frozen=True)
class Svg:
    """A chart drawn on the server as SVG: `body` is its elements without the outer <svg>, so
    several charts can sit side by side in one document (`bench/active_learning.py`)."""

    width: int
    height: int
    body: str

    def document(self) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'font-family="sans-serif" role="img">{self.body}</svg>'
        )


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = (high - low) or 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _tick_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def learning_curve_svg(
    series: list[dict],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 360,
) -> Svg:
    """Lines with a shaded band, drawn as SVG (no JavaScript: the Dashboard fragment and the
    README chart of `bench/active_learning.py` share it).

    series: [{"name", "x": [...], "y": [...], "low": [...]|None, "high": [...]|None,
        "color"}]; a point whose y is None is skipped, a band is drawn where low and high are
        both given. Every point carries a <title> with its numbers.
    """
    left, right, top, bottom = 56, 16, 40, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, y in zip(s["x"], s["y"], strict=True) if y is not None]
    ys = [v for s in series for key in ("y", "low", "high")
          for v in (s.get(key) or []) if v is not None]  # fmt: skip
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0, 1)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = max((y_hi - y_lo) * 0.08, 0.02)
    y_lo, y_hi = max(0.0, y_lo - pad), min(1.0, y_hi + pad)

    def px(x: float) -> float:
        return round(left + (x - x_lo) / (x_hi - x_lo) * plot_w, 1)

    def py(y: float) -> float:
        return round(top + (y_hi - y) / (y_hi - y_lo) * plot_h, 1)

    parts = [
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#ced4da"/>',
    ]
    for tick in _nice_ticks(y_lo, y_hi):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(tick)}" y2="{py(tick)}" '
            f'stroke="#f1f3f5"/><text x="{left - 6}" y="{py(tick) + 4}" font-size="11" '
            f'text-anchor="end">{_tick_text(tick)}</text>'
        )
    whole_x = all(float(x).is_integer() for x in xs)
    for tick in _nice_ticks(x_lo, x_hi):
        if whole_x and not float(tick).is_integer():
            continue  # counts: no tick at 2,882.5
        parts.append(
            f'<text x="{px(tick)}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{_tick_text(tick)}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 10}" font-size="12" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="14" y="{top + plot_h / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_label)}</text>'
    )
    for index, s in enumerate(series):
        color = escape(s.get("color") or MODEL_COLOR)
        low, high = s.get("low") or [None] * len(s["x"]), s.get("high") or [None] * len(s["x"])
        band = [(x, lo, hi) for x, lo, hi in zip(s["x"], low, high, strict=True)
                if lo is not None and hi is not None]  # fmt: skip
        if band:
            outline = [f"{px(x)},{py(hi)}" for x, _, hi in band]
            outline += [f"{px(x)},{py(lo)}" for x, lo, _ in reversed(band)]
            parts.append(
                f'<polygon points="{" ".join(outline)}" fill="{color}" fill-opacity="0.15" '
                'stroke="none"/>'
            )
        points = [(x, y, lo, hi) for x, y, lo, hi in zip(s["x"], s["y"], low, high, strict=True)
                  if y is not None]  # fmt: skip
        if len(points) > 1:
            line = " ".join(f"{px(x)},{py(y)}" for x, y, _, _ in points)
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        if len(band) == 1:  # one refresh: its interval as a bar, no band to draw
            x, lo, hi = band[0]
            parts.append(
                f'<line x1="{px(x)}" x2="{px(x)}" y1="{py(lo)}" y2="{py(hi)}" stroke="{color}" '
                'stroke-width="2" stroke-opacity="0.4"/>'
            )
        for x, y, lo, hi in points:
            interval = f" ({lo:.3f}-{hi:.3f})" if lo is not None and hi is not None else ""
            parts.append(
                f'<circle cx="{px(x)}" cy="{py(y)}" r="3" fill="{color}"><title>'
                f"{escape(str(s['name']))}: {_tick_text(x)} {escape(x_label)}, "
                f"{escape(y_label)} {y:.3f}{interval}</title></circle>"
            )
        legend_y = top + plot_h - 10 - 16 * (len(series) - 1 - index)  # bottom right
        parts.append(
            f'<line x1="{left + plot_w - 130}" x2="{left + plot_w - 112}" y1="{legend_y - 4}" '
            f'y2="{legend_y - 4}" stroke="{color}" stroke-width="3"/>'
            f'<text x="{left + plot_w - 106}" y="{legend_y}" font-size="12">'
            f"{escape(str(s['name']))}</text>"
        )
    return Svg(width=width, height=height, body="".join(parts))
