/**
 * The reward–KL frontier figure: a Vega-Lite spec (kept beside the figure, so it can be restyled or
 * re-rendered elsewhere) rendered to SVG headless by Vega itself (`View.toSVG()`, no browser, no
 * canvas). `vega` and `vega-lite` are optional: loaded only here, with a message saying how to get
 * them when absent.
 *
 * One colour per method: its checkpoints (averaged over seeds, ±1 standard error bars in both
 * directions, the shape telling β), and its frontier (the best reward at each KL, a step line through
 * the Pareto points) — Best-of-N from the SFT model in black.
 *
 * @module
 */

import { paretoFront } from "./frontier.ts";

/** A plotted point: one method's checkpoint (seed-averaged) or one Best-of-N size. */
export interface PlotPoint {
  /** Legend label, e.g. `EXO-pref` or `Best-of-N (SFT)`. */
  label: string;
  /** Shape legend: `β = 0.1`, `SFT`, `Best-of-N`. */
  group: string;
  /** Best-of-N's `N=4` label beside its point, else null. */
  n?: string | null;
  step: number | null;
  kl: number;
  klSe: number;
  reward: number;
  rewardSe: number;
}

/** Legend order of the shapes: β ascending, then the SFT model, then Best-of-N. */
function shapeRank(group: string): number {
  const beta = /^β = (.+)$/.exec(group);
  if (beta) return Number(beta[1]);
  return group === "SFT" ? 1e9 : 2e9;
}

/** Legend order and colours: EXO warm, DPO cool, Best-of-N black. */
export const COLORS: Record<string, string> = {
  "EXO-pref": "#d62728",
  "EXO-rw (K=4)": "#ff7f0e",
  "EXO-rw (K=2)": "#e377c2",
  "DPO-pref": "#1f77b4",
  "DPO-rw (K=4)": "#17becf",
  "DPO-rw (K=2)": "#9467bd",
  "Best-of-N (SFT)": "#000000",
};

/** The Vega-Lite spec of the figure. */
export function frontierSpec(points: readonly PlotPoint[], title: string, subtitle: string): Record<string, unknown> {
  const labels = [...new Set(points.map((p) => p.label))];
  const domain = [...Object.keys(COLORS).filter((l) => labels.includes(l)), ...labels.filter((l) => !(l in COLORS))];
  const palette = ["#8c564b", "#7f7f7f", "#bcbd22", "#2ca02c"];
  const range = domain.map((l, i) => COLORS[l] ?? palette[i % palette.length]);
  const shapes = [...new Set(points.map((p) => p.group))].sort((a, b) =>
    shapeRank(a) - shapeRank(b) || a.localeCompare(b)
  );
  const rows = points.map((p) => ({
    ...p,
    kind: "point",
    klLo: p.kl - p.klSe,
    klHi: p.kl + p.klSe,
    rLo: p.reward - p.rewardSe,
    rHi: p.reward + p.rewardSe,
  }));
  for (const label of labels) {
    for (const f of paretoFront(points.filter((p) => p.label === label))) {
      rows.push({ ...f, kind: "front", klLo: f.kl, klHi: f.kl, rLo: f.reward, rHi: f.reward });
    }
  }
  const color = { field: "label", type: "nominal", title: "method", scale: { domain, range } };
  const x = { field: "kl", type: "quantitative", title: "KL(π_θ ‖ π_sft), nats per sequence" };
  const y = { field: "reward", type: "quantitative", title: "mean oracle reward", scale: { zero: false } };
  const isPoint = { filter: "datum.kind === 'point'" };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle },
    width: 560,
    height: 380,
    data: { values: rows },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'front'" }],
        mark: { type: "line", interpolate: "step-after", strokeWidth: 1.5, opacity: 0.8 },
        encoding: { x, y, color, order: { field: "kl", type: "quantitative" } },
      },
      {
        transform: [isPoint],
        mark: { type: "rule", opacity: 0.5 },
        encoding: { x: { ...x, field: "klLo" }, x2: { field: "klHi" }, y, color },
      },
      {
        transform: [isPoint],
        mark: { type: "rule", opacity: 0.5 },
        encoding: { x, y: { ...y, field: "rLo" }, y2: { field: "rHi" }, color },
      },
      {
        transform: [isPoint, { filter: "datum.n != null" }],
        mark: { type: "text", dx: 4, dy: -8, align: "left", fontSize: 10 },
        encoding: { x, y, text: { field: "n", type: "nominal", format: "" }, color },
      },
      {
        transform: [isPoint],
        mark: { type: "point", filled: true, size: 40, opacity: 0.9 },
        encoding: {
          x,
          y,
          color,
          shape: { field: "group", type: "nominal", title: "point", scale: { domain: shapes } },
          tooltip: [
            { field: "label" },
            { field: "group" },
            { field: "step" },
            { field: "kl", format: ".3f" },
            { field: "reward", format: ".3f" },
          ],
        },
      },
    ],
    config: { font: "sans-serif", legend: { orient: "right" } },
  };
}

/** Renders a Vega-Lite spec to SVG text, headless. */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  let vega: typeof import("vega"), vl: typeof import("vega-lite");
  try {
    vega = await import("vega");
    vl = await import("vega-lite");
  } catch (e) {
    throw new Error(
      `The figure needs the vega and vega-lite packages, which cannot be loaded (${
        (e as Error).message
      }): install them (npm i vega@6 vega-lite@6; in a clone npm ci has them), or pass --no-figure`,
    );
  }
  // deno-lint-ignore no-explicit-any
  const compiled = vl.compile(spec as any).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Loads vega and vega-lite now (fails early, before an hour of training, when they are absent). */
export async function checkPlotting(): Promise<void> {
  await renderSvg(frontierSpec([], "check", ""));
}
