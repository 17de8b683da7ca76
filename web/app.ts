/**
 * The tuning page's main thread: controls, the chart, downloads. Everything heavy (ONNX Runtime,
 * the model, training, generation, the OPFS store) runs in the Worker (worker.ts); this file only
 * sends it requests and draws what it reports.
 *
 * URL parameters (for links and tests): `model` (a model directory URL, default the bundled review
 * model), `data` (a JSONL URL, default the bundled pairs), `threads` (wasm threads; changing the
 * threads control reloads the page with it, since ORT's thread count is fixed once loaded).
 *
 * @module
 */

import { drawChart } from "./chart.ts";
import type { FromWorker, MetricsRow, RunInfo, RunOptions, ToWorker } from "./protocol.ts";

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);

/**
 * wasm threads: the `threads` parameter, else the cores (at most 4, ORT's own cap) when the page is
 * cross-origin isolated (threads need SharedArrayBuffer), else 1.
 */
function threadCount(): number {
  const p = Number(params.get("threads"));
  if (Number.isInteger(p) && p >= 1) return p;
  return crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

const state = {
  rows: [] as MetricsRow[],
  totalSteps: null as number | null,
  runId: null as string | null,
  running: false,
  modelReady: false,
  /** The model the Worker holds (a failed load keeps the previous one). */
  modelLabel: null as string | null,
  dataReady: false,
  urls: [] as string[],
  /** What the page saw at the end of each run (backend, speed), kept over the stored runs' listing. */
  ended: {} as Record<string, string>,
};

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "exo-tune-trainer" });
const send = (m: ToWorker) => worker.postMessage(m);

function showError(id: string, message: string | null): void {
  const e = $(id);
  e.textContent = message ?? "";
  e.hidden = message === null;
}

function log(line: string): void {
  const pre = $("log");
  pre.textContent += line + "\n";
  pre.scrollTop = pre.scrollHeight;
}

function options(): RunOptions {
  const num = (id: string) => Number(input(id).value);
  return {
    backend: $<HTMLSelectElement>("opt-backend").value as RunOptions["backend"],
    maxSteps: num("opt-steps"),
    batchSize: num("opt-batch"),
    lr: num("opt-lr"),
    beta: num("opt-beta"),
    loraR: num("opt-r"),
    seed: num("opt-seed"),
    checkpointEvery: num("opt-ckpt"),
  };
}

function setOptions(o: RunOptions): void {
  $<HTMLSelectElement>("opt-backend").value = o.backend;
  input("opt-steps").value = String(o.maxSteps);
  input("opt-batch").value = String(o.batchSize);
  input("opt-lr").value = String(o.lr);
  input("opt-beta").value = String(o.beta);
  input("opt-r").value = String(o.loraR);
  input("opt-seed").value = String(o.seed);
  input("opt-ckpt").value = String(o.checkpointEvery);
}

function refreshButtons(): void {
  $<HTMLButtonElement>("train").disabled = state.running || !state.modelReady || !state.dataReady;
  $<HTMLButtonElement>("stop").disabled = !state.running;
  $<HTMLButtonElement>("samples").disabled = state.running || !state.modelReady || !$("downloads").dataset.run;
  if (state.running) $("resume").hidden = true;
}

function redraw(): void {
  drawChart($("chart") as unknown as SVGSVGElement, state.rows, state.totalSteps);
  const last = state.rows.at(-1);
  if (state.totalSteps && last) {
    const p = $<HTMLProgressElement>("progress");
    p.max = state.totalSteps;
    p.value = last.step;
  }
}

/** Shows a stored run: its chart, and its resume button or its downloads. */
function showRun(run: RunInfo): void {
  state.runId = run.meta.id;
  state.rows = run.metrics;
  state.totalSteps = run.meta.options.maxSteps;
  setOptions(run.meta.options);
  redraw();
  $("progress-text").textContent = `step ${run.metrics.at(-1)?.step ?? 0}/${run.meta.options.maxSteps}`;
  if (run.finished) {
    $("run-status").textContent = state.ended[run.meta.id] ?? `Run ${run.meta.id} finished (${run.meta.dataName})`;
    send({ type: "adapter", id: run.meta.id });
  } else if (run.checkpointStep !== null) {
    $("run-status").textContent =
      `Run ${run.meta.id} stopped at step ${run.checkpointStep} of ${run.meta.options.maxSteps} (checkpoint stored in this browser)`;
    const b = $<HTMLButtonElement>("resume");
    b.hidden = false;
    b.textContent = `Resume from step ${run.checkpointStep}`;
    b.dataset.run = run.meta.id;
  }
}

function showDownloads(id: string, config: string, safetensors: Uint8Array): void {
  for (const u of state.urls) URL.revokeObjectURL(u);
  const a = URL.createObjectURL(new Blob([config], { type: "application/json" }));
  const b = URL.createObjectURL(
    new Blob([safetensors as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
  );
  state.urls = [a, b];
  $<HTMLAnchorElement>("dl-config").href = a;
  $<HTMLAnchorElement>("dl-weights").href = b;
  $("downloads").hidden = false;
  $("downloads").dataset.run = id;
  refreshButtons();
}

function showSamples(prompts: string[], before: string[], after: string[]): void {
  const body = $("samples-table").querySelector("tbody")!;
  body.replaceChildren(...prompts.map((p, i) => {
    const tr = document.createElement("tr");
    for (const text of [p, before[i], after[i]]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  $("samples-table").hidden = false;
}

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "ready":
      log(`worker ready: cross-origin isolated ${m.crossOriginIsolated}, wasm threads ${m.threads}`);
      break;
    case "backend":
      $("backend").textContent = `Backend: ${m.backend} (${m.reason}) · wasm threads ${threadCount()}${
        crossOriginIsolated ? "" : " (not cross-origin isolated: 1 thread)"
      }`;
      $("backend").dataset.backend = m.backend;
      break;
    case "model":
      state.modelReady = true;
      state.modelLabel = m.label;
      if (m.kind === "url") input("model-url").value = m.label; // e.g. a resumed run's model
      $("model-status").textContent = `${m.label}: ${m.arch}, ${
        (m.parameters / 1e6).toFixed(2)
      }M parameters, vocab ${m.vocabSize} (loaded in ${m.seconds.toFixed(1)} s)`;
      showError("model-error", null);
      break;
    case "data":
      state.dataReady = true;
      $("data-status").textContent = `${m.name}: ${m.pairs} pairs${
        m.warnings.length ? `, ${m.warnings.length} warnings` : ""
      }`;
      $("data-status").dataset.name = m.name;
      showError("data-error", null);
      for (const w of m.warnings.slice(0, 5)) log(`warning: ${w}`);
      break;
    case "run-started":
      state.running = true;
      state.runId = m.meta.id;
      state.rows = m.metrics;
      state.totalSteps = m.meta.options.maxSteps;
      $("downloads").hidden = true;
      delete $("downloads").dataset.run;
      $("samples-table").hidden = true;
      $("run-status").textContent = m.resumedFromStep === null
        ? `Training run ${m.meta.id}…`
        : `Resumed run ${m.meta.id} from step ${m.resumedFromStep}…`;
      $("run-status").dataset.resumedFrom = String(m.resumedFromStep ?? "");
      redraw();
      break;
    case "log":
      log(m.line);
      if (m.line.startsWith("backend: ")) $("run-status").dataset.backend = m.line.slice(9);
      break;
    case "metrics":
      state.rows.push(m.row);
      redraw();
      break;
    case "progress":
      state.totalSteps = m.totalSteps;
      $("progress-text").textContent = m.text.replace(/^\[[#-]+\]\s*/, "");
      redraw();
      break;
    case "run-ended":
      state.running = false;
      $("run-status").textContent = m.interrupted
        ? `Stopped at step ${m.steps}: checkpoint stored; Resume continues from it (also after a reload)`
        : `Run ${m.id}: finished ${m.steps} steps on ${m.backend}, ${m.tokensPerSecond.toFixed(0)} tokens/s`;
      if (!m.interrupted) state.ended[m.id] = $("run-status").textContent!;
      $("run-status").dataset.state = m.interrupted ? "stopped" : "finished";
      send({ type: "runs" });
      break;
    case "samples":
      showSamples(m.prompts, m.before, m.after);
      $<HTMLButtonElement>("samples").disabled = false;
      break;
    case "adapter":
      showDownloads(m.id, m.config, m.safetensors);
      break;
    case "runs": {
      const latest = m.runs.at(-1);
      $("resume").hidden = true;
      if (latest && !state.running) showRun(latest);
      break;
    }
    case "error":
      if (m.where === "model") {
        showError("model-error", m.message);
        state.modelReady = state.modelLabel !== null; // the Worker keeps the model it had
      } else if (m.where === "data") showError("data-error", m.message);
      else {
        showError("train-error", m.message);
        if (m.where === "train") state.running = false;
      }
      log(`error (${m.where}): ${m.message}`);
      break;
  }
  refreshButtons();
};
worker.onerror = (e) => showError("train-error", `The worker failed: ${e.message}`);

async function readDataFile(file: File): Promise<void> {
  send({ type: "set-data", name: file.name, text: await file.text() });
}

function wire(): void {
  $("model-load").onclick = () => {
    state.modelReady = false;
    send({ type: "load-model", source: { kind: "url", url: input("model-url").value.trim() } });
    refreshButtons();
  };
  input("model-folder").onchange = () => {
    const list = [...(input("model-folder").files ?? [])];
    if (list.length === 0) return;
    const name = list[0].webkitRelativePath.split("/")[0];
    const files: Record<string, File> = {};
    for (const f of list) files[f.webkitRelativePath.split("/").slice(1).join("/")] = f;
    state.modelReady = false;
    send({ type: "load-model", source: { kind: "folder", name, files } });
  };
  input("data-file").onchange = () => {
    const f = input("data-file").files?.[0];
    if (f) void readDataFile(f);
  };
  const drop = $("data-drop");
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add("over");
  };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) void readDataFile(f);
  };
  $("opt-backend").onchange = () => send({ type: "backend", preference: options().backend });
  const threads = $<HTMLSelectElement>("opt-threads");
  if (![...threads.options].some((o) => o.value === String(threadCount()))) {
    threads.add(new Option(String(threadCount())));
  }
  threads.value = String(threadCount());
  threads.onchange = () => {
    params.set("threads", threads.value);
    location.search = params.toString();
  };
  $("train").onclick = () => {
    showError("train-error", null);
    delete $("run-status").dataset.state;
    state.running = true;
    state.rows = [];
    redraw();
    send({ type: "train", options: options() });
    refreshButtons();
  };
  $("stop").onclick = () => send({ type: "stop" });
  $("resume").onclick = () => {
    showError("train-error", null);
    delete $("run-status").dataset.state;
    state.running = true;
    send({ type: "resume", id: $("resume").dataset.run! });
    refreshButtons();
  };
  $("samples").onclick = () => {
    $<HTMLButtonElement>("samples").disabled = true;
    send({ type: "samples", id: $("downloads").dataset.run! });
  };
  $("clear").onclick = () => {
    state.rows = [];
    state.runId = null;
    $("downloads").hidden = true;
    delete $("downloads").dataset.run;
    $("run-status").textContent = "No run yet";
    redraw();
    send({ type: "clear-runs" });
  };
}

async function start(): Promise<void> {
  wire();
  redraw();
  send({ type: "init", threads: threadCount() });
  send({ type: "backend", preference: options().backend });
  const modelUrl = params.get("model") ?? "models/review-gpt2";
  input("model-url").value = modelUrl;
  send({ type: "load-model", source: { kind: "url", url: modelUrl } });
  const dataUrl = params.get("data") ?? "data/pairs.jsonl";
  const res = await fetch(dataUrl);
  if (res.ok) send({ type: "set-data", name: dataUrl.split("/").pop()!, text: await res.text() });
  else showError("data-error", `Cannot fetch ${dataUrl}: HTTP ${res.status}`);
  send({ type: "runs" });
}

void start();
