#!/usr/bin/python3
"""Renders oversell timelines ("worker enter_ns exit_ns" lines) as one SVG:
one row per worker, one bar per sale, for each run given as LABEL=FILE."""
import sys

def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            w, a, b = line.split()
            rows.append((int(w), int(a), int(b)))
    return rows

def main():
    out, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    data = [(label, load(path)) for label, path in runs]
    width, row_h, left, top = 900, 14, 90, 30
    parts, y = [], top
    for label, rows in data:
        if not rows:
            continue
        t0 = min(a for _, a, _ in rows)
        span = max(b for _, _, b in rows) - t0 or 1
        workers = sorted({w for w, _, _ in rows})
        parts.append(f'<text x="4" y="{y - 8}" font-size="13" font-weight="bold">{label} '
                     f'({len(rows)} sales in {span / 1e9:.2f} s)</text>')
        for i, w in enumerate(workers):
            yy = y + i * row_h
            parts.append(f'<text x="4" y="{yy + 10}" font-size="10">worker {w}</text>')
            for ww, a, b in rows:
                if ww != w:
                    continue
                x = left + (a - t0) / span * (width - left - 10)
                wd = max((b - a) / span * (width - left - 10), 0.8)
                parts.append(f'<rect x="{x:.2f}" y="{yy}" width="{wd:.2f}" height="{row_h - 3}" '
                             f'fill="hsl({w * 45 % 360},60%,50%)"/>')
        y += len(workers) * row_h + 40
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
           f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
           + "".join(parts) + "</svg>\n")
    with open(out, "w") as f:
        f.write(svg)

main()
