/**
 * The live training chart: SVG, redrawn from the metrics rows on every update. SVG rather than a
 * canvas because a WebGPU page on a software adapter (Chromium's SwiftShader) cannot draw to
 * canvases reliably, and SVG stays sharp, is cheap at a few thousand points and can be inspected
 * (each series is one `<polyline data-series=...>`).
 *
 * @module
 */

import type { MetricsRow } from "./protocol.ts";

const NS = "http://www.w3.org/2000/svg";
/** Steps in the moving average drawn over each series. */
const SMOOTHING = 10;

/** The mean of each value and up to `n - 1` before it. */
export function movingAverage(xs: readonly number[], n: number): number[] {
  let sum = 0;
  return xs.map((x, i) => {
    sum += x - (i >= n ? xs[i - n] : 0);
    return sum / Math.min(i + 1, n);
  });
}

/**
 * One panel: the series it plots (metric name, color), an optional fixed y range, and whether 0 is
 * kept in view (margins: the sign matters; loss: the shape matters).
 */
interface Panel {
  title: string;
  series: { key: string; color: string }[];
  range?: [number, number];
  zero?: boolean;
}

const PANELS: Panel[] = [
  { title: "loss", series: [{ key: "loss", color: "#c0392b" }] },
  { title: "rewards/accuracies", series: [{ key: "rewards/accuracies", color: "#2471a3" }], range: [0, 1] },
  { title: "rewards/margins", series: [{ key: "rewards/margins", color: "#229954" }], zero: true },
];

function el(name: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-2 || a >= 1e4) ? v.toExponential(1) : v.toFixed(a < 1 ? 3 : 2);
}

/** Redraws `svg` (viewBox 900 x 240) from `rows`, steps on x; `totalSteps` fixes the x range when known. */
export function drawChart(svg: SVGSVGElement, rows: readonly MetricsRow[], totalSteps: number | null): void {
  const W = 900, H = 240, pad = { l: 46, r: 8, t: 24, b: 28 };
  const gap = 16, panelW = (W - gap * (PANELS.length - 1)) / PANELS.length;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const maxStep = Math.max(totalSteps ?? 0, ...rows.map((r) => r.step), 1);
  PANELS.forEach((panel, pi) => {
    const x0 = pi * (panelW + gap) + pad.l, x1 = pi * (panelW + gap) + panelW - pad.r;
    const y0 = H - pad.b, y1 = pad.t;
    const values = rows.flatMap((r) => panel.series.map((s) => r[s.key]).filter((v) => Number.isFinite(v)));
    const z = panel.zero ? [0] : [];
    let [lo, hi] = panel.range ?? [Math.min(...values, ...z), Math.max(...values, ...z)];
    if (!(hi > lo)) [lo, hi] = [lo - 1, hi + 1];
    if (!panel.range) [lo, hi] = [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)];
    const sx = (step: number) => x0 + (x1 - x0) * (step / maxStep);
    const sy = (v: number) => y0 - (y0 - y1) * ((v - lo) / (hi - lo));
    const g = el("g", { "data-panel": panel.title });
    g.append(
      el("rect", { x: x0, y: y1, width: x1 - x0, height: y0 - y1, fill: "#fafafa", stroke: "#ccc" }),
      el("text", { x: x0, y: y1 - 8, "font-size": 13, "font-weight": 600 }, panel.title),
      el("text", { x: x0 - 6, y: y1 + 10, "font-size": 11, "text-anchor": "end" }, fmt(hi)),
      el("text", { x: x0 - 6, y: y0, "font-size": 11, "text-anchor": "end" }, fmt(lo)),
      el("text", { x: x0, y: y0 + 16, "font-size": 11 }, "0"),
      el("text", { x: x1, y: y0 + 16, "font-size": 11, "text-anchor": "end" }, `step ${maxStep}`),
    );
    if (lo < 0 && hi > 0) {
      g.append(el("line", { x1: x0, x2: x1, y1: sy(0), y2: sy(0), stroke: "#ddd", "stroke-dasharray": "3 3" }));
    }
    for (const s of panel.series) {
      const finite = rows.filter((r) => Number.isFinite(r[s.key]));
      const pts = finite.map((r) => `${sx(r.step).toFixed(1)},${sy(r[s.key]).toFixed(1)}`);
      // Per-step values are noisy (one batch each): the raw series light, a moving average over it.
      const smooth = movingAverage(finite.map((r) => r[s.key]), SMOOTHING);
      const spts = finite.map((r, i) => `${sx(r.step).toFixed(1)},${sy(smooth[i]).toFixed(1)}`);
      g.append(
        el("polyline", {
          "data-series": s.key,
          "data-points": pts.length,
          points: pts.join(" "),
          fill: "none",
          stroke: s.color,
          "stroke-opacity": finite.length > SMOOTHING ? 0.35 : 1,
          "stroke-width": finite.length > SMOOTHING ? 1 : 2,
        }),
      );
      if (finite.length > SMOOTHING) {
        g.append(el("polyline", {
          "data-series": `${s.key} (mean of ${SMOOTHING})`,
          points: spts.join(" "),
          fill: "none",
          stroke: s.color,
          "stroke-width": 2,
        }));
      }
      const last = rows.findLast((r) => Number.isFinite(r[s.key]));
      if (last) {
        g.append(
          el("circle", { cx: sx(last.step), cy: sy(last[s.key]), r: 3, fill: s.color }),
          el("text", { x: x1 - 4, y: y1 - 8, "font-size": 11, fill: s.color, "text-anchor": "end" }, fmt(last[s.key])),
        );
      }
    }
    svg.append(g);
  });
}
