/**
 * The training Worker of the tuning page. It owns ONNX Runtime (so the page stays responsive and
 * ORT's wasm threads start from a Worker, not from the page's main thread), the loaded model, the
 * validated data and the run store (OPFS, through the library's `opfsFiles`). It runs the public
 * API only: `loadModel`, `validateAll`, `Trainer.create({model, data, out, files, signal,
 * progress})`, `Generator`, `readAdapter`.
 *
 * The build (scripts/build_web.ts) bundles this file with `../mod.ts` mapped to the library bundle
 * `./exo-tune.js`.
 *
 * @module
 */

import {
  applyChatTemplate,
  type ChatMessage,
  configureRuntime,
  type FileSink,
  type FileSource,
  Generator,
  latestCheckpoint,
  type LoadedModel,
  loadModel,
  opfsFiles,
  readAdapter,
  renderChat,
  resolveBackend,
  Trainer,
  urlFiles,
  validateAll,
} from "../mod.ts";
import type { FromWorker, MetricsRow, ModelSource, RunInfo, RunMeta, RunOptions, ToWorker } from "./protocol.ts";

const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** Everything of the page's runs lives under this OPFS folder. */
const store = opfsFiles("exo-tune");

let model: LoadedModel | null = null;
/** The model's source as the page gave it (a URL, or a picked folder's name). */
let modelLabel = "";
let modelSourceKind: "url" | "folder" = "url";
let data: { name: string; text: string } | null = null;
let abort: AbortController | null = null;

/** A FileSource over a picked folder's files, keyed `<folder>/<relative path>`. */
function folderFiles(name: string, files: Record<string, File>): FileSource {
  const get = (path: string) => files[path.startsWith(`${name}/`) ? path.slice(name.length + 1) : path];
  return {
    async readBytes(path) {
      const f = get(path);
      if (!f) throw new Error(`File not found in the picked folder ${name}: ${path}`);
      return new Uint8Array(await f.arrayBuffer());
    },
    async readText(path) {
      return new TextDecoder().decode(await this.readBytes(path));
    },
    exists(path) {
      return Promise.resolve(get(path) !== undefined);
    },
  };
}

/** A URL as a FileSource on its origin plus the path of the directory (the model's `dir`). */
function urlSource(url: string): { files: FileSource; dir: string } {
  const abs = new URL(url, self.location.href);
  const dir = decodeURIComponent(abs.pathname).replace(/^\/+|\/+$/g, "");
  return { files: urlFiles(`${abs.origin}/`), dir };
}

async function loadModelFrom(source: ModelSource): Promise<void> {
  const t0 = performance.now();
  const label = source.kind === "url" ? source.url : source.name;
  const m = source.kind === "url"
    ? await (async () => {
      const { files, dir } = urlSource(source.url);
      return await loadModel(dir, files);
    })()
    : await loadModel(source.name, folderFiles(source.name, source.files));
  model = m;
  modelLabel = label;
  modelSourceKind = source.kind;
  let parameters = 0;
  for (const t of m.weights.values()) parameters += t.data.length;
  post({
    type: "model",
    kind: source.kind,
    label,
    arch: m.config.arch,
    parameters,
    vocabSize: m.config.vocabSize,
    seconds: (performance.now() - t0) / 1000,
  });
}

/** Validates a data file against the loaded model (token ids in range); pairs only (EXO-pref). */
function setData(name: string, text: string): void {
  const ds = validateAll(text, { file: name, vocabSize: model?.config.vocabSize });
  if (ds.kind !== "pairs") {
    throw new Error(
      `${name}: holds ${ds.kind}, but the page tunes EXO-pref on preference pairs ({"prompt","chosen","rejected"} per line)`,
    );
  }
  data = { name, text };
  post({ type: "data", name, pairs: ds.records.length, warnings: ds.warnings.map((w) => w.message) });
}

const runDir = (id: string) => `runs/${id}`;

/** The OPFS store, with every appended metrics line also sent to the page (the live chart). */
function tappedStore(): FileSource & FileSink {
  return {
    readBytes: (p) => store.readBytes(p),
    readText: (p) => store.readText(p),
    exists: (p) => store.exists(p),
    writeBytes: (p, d) => store.writeBytes(p, d),
    writeText: (p, t) => store.writeText(p, t),
    async appendText(p, t) {
      await store.appendText(p, t);
      if (p.endsWith("/metrics.jsonl")) {
        for (const line of t.split("\n")) if (line.trim()) post({ type: "metrics", row: JSON.parse(line) });
      }
    },
    mkdir: (p) => store.mkdir(p),
    remove: (p) => store.remove(p),
    rename: (a, b) => store.rename(a, b),
    list: (p) => store.list(p),
  };
}

async function readMetrics(id: string): Promise<MetricsRow[]> {
  const path = `${runDir(id)}/metrics.jsonl`;
  if (!(await store.exists(path))) return [];
  return (await store.readText(path)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function listRuns(): Promise<RunInfo[]> {
  const runs: RunInfo[] = [];
  for (const id of (await store.list("runs")).sort()) {
    const metaPath = `${runDir(id)}/run.json`;
    if (!(await store.exists(metaPath))) continue;
    const meta = JSON.parse(await store.readText(metaPath)) as RunMeta;
    const ckpt = await latestCheckpoint(runDir(id), store);
    runs.push({
      meta,
      checkpointStep: ckpt ? Number(ckpt.split("step-").pop()) : null,
      finished: await store.exists(`${runDir(id)}/adapter_model.safetensors`),
      metrics: await readMetrics(id),
    });
  }
  return runs;
}

/** Trains a new run (`resumeId` null) or resumes a stored one from its newest checkpoint. */
async function train(options: RunOptions | null, resumeId: string | null): Promise<void> {
  if (!model) throw new Error("Load a model first");
  let meta: RunMeta;
  if (resumeId === null) {
    if (!data) throw new Error("Choose the preference data first");
    if (!options) throw new Error("unreachable: a new run needs options");
    const id = `run-${new Date().toISOString().replace(/[-:.]/g, "").replace("T", "-").slice(0, 15)}-${
      Math.random().toString(36).slice(2, 6)
    }`;
    meta = {
      id,
      created: new Date().toISOString(),
      model: modelSourceKind === "url" ? { kind: "url", url: modelLabel } : { kind: "folder", name: modelLabel },
      dataName: data.name,
      options,
    };
    await store.writeText(`${runDir(id)}/data.jsonl`, data.text);
    await store.writeText(`${runDir(id)}/run.json`, JSON.stringify(meta, null, 2) + "\n");
  } else {
    meta = JSON.parse(await store.readText(`${runDir(resumeId)}/run.json`)) as RunMeta;
    const wanted = meta.model.kind === "url" ? meta.model.url : meta.model.name;
    if (wanted !== modelLabel) {
      if (meta.model.kind === "folder") {
        throw new Error(`Run ${meta.id} was tuned from the folder "${wanted}": pick that folder again to resume it`);
      }
      await loadModelFrom({ kind: "url", url: wanted });
    }
  }
  const out = runDir(meta.id);
  abort = new AbortController();
  let trainer: Trainer;
  try {
    trainer = await Trainer.create({
      model: model!,
      data: `${out}/data.jsonl`,
      out,
      files: tappedStore(),
      signal: abort.signal,
      resume: resumeId !== null,
      loss: "exo-pref",
      backend: meta.options.backend,
      maxSteps: meta.options.maxSteps,
      batchSize: meta.options.batchSize,
      lr: meta.options.lr,
      beta: meta.options.beta,
      loraR: meta.options.loraR,
      seed: meta.options.seed,
      checkpointEvery: meta.options.checkpointEvery,
      epochs: 1000, // maxSteps decides
      progress: {
        isTTY: true, // one write per update (the bar), which carries "step N/T"
        write(text) {
          const m = /step (\d+)\/(\d+)/.exec(text);
          if (m) post({ type: "progress", step: Number(m[1]), totalSteps: Number(m[2]), text: text.trim() });
        },
      },
      log: (line) => post({ type: "log", line }),
    });
  } catch (e) {
    // Nothing was trained: a new run's folder goes; a stored run stays as it was.
    if (resumeId === null) await store.remove(out);
    throw e;
  }
  const ckpt = resumeId === null ? null : await latestCheckpoint(out, store);
  post({
    type: "run-started",
    meta,
    resumedFromStep: ckpt ? Number(ckpt.split("step-").pop()) : null,
    metrics: await readMetrics(meta.id),
  });
  const s = await trainer.train();
  post({
    type: "run-ended",
    id: meta.id,
    steps: s.steps,
    interrupted: s.interrupted,
    backend: `${s.backend} (${s.backendReason})`,
    tokensPerSecond: s.tokensPerSecond,
  });
}

/** Completions of the run's first prompts by the base model and by the tuned adapter (same seed). */
async function samples(id: string): Promise<void> {
  if (!model) throw new Error("Load a model first");
  const meta = JSON.parse(await store.readText(`${runDir(id)}/run.json`)) as RunMeta;
  const ds = validateAll(await store.readText(`${runDir(id)}/data.jsonl`), { file: meta.dataName });
  if (ds.kind !== "pairs") throw new Error(`${meta.dataName}: not preference pairs`);
  const m = model;
  // A conversational prompt goes through the model's chat template with a generation prompt, as in
  // transformers' pipeline; text and token ids are used as they are.
  const segments = ds.records.slice(0, 3).map((r) => r.prompt);
  const isChat = (p: (typeof segments)[number]): p is ChatMessage[] => Array.isArray(p) && typeof p[0] === "object";
  const prompts = segments.map((p) => isChat(p) ? applyChatTemplate(m.tokenizer, p, { addGenerationPrompt: true }) : p);
  const adapter = await readAdapter(runDir(id), store, model.config);
  const gen = await Generator.create(model, { backend: meta.options.backend });
  try {
    const opts = { maxNewTokens: 20, temperature: 0.8, seed: 1 };
    const before = await gen.generate(prompts, opts);
    await gen.setAdapter(adapter);
    const after = await gen.generate(prompts, opts);
    post({
      type: "samples",
      id,
      prompts: segments.map((p) =>
        isChat(p)
          ? renderChat(m.tokenizer, p, { addGenerationPrompt: true })
          : typeof p === "string"
          ? p
          : m.tokenizer.decode(p)
      ),
      before: before.sequences.map((s) => s.text),
      after: after.sequences.map((s) => s.text),
    });
  } finally {
    await gen.release();
  }
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case "init": {
      configureRuntime({ wasmThreads: m.threads });
      post({
        type: "ready",
        crossOriginIsolated: self.crossOriginIsolated,
        threads: m.threads,
        hardwareConcurrency: navigator.hardwareConcurrency,
      });
      return;
    }
    case "backend": {
      const c = await resolveBackend(m.preference);
      post({ type: "backend", backend: c.backend, reason: c.reason });
      return;
    }
    case "load-model":
      return await loadModelFrom(m.source);
    case "set-data":
      return setData(m.name, m.text);
    case "train":
      return await train(m.options, null);
    case "resume":
      return await train(null, m.id);
    case "stop":
      abort?.abort();
      return;
    case "samples":
      return await samples(m.id);
    case "adapter": {
      const dir = runDir(m.id);
      const config = await store.readText(`${dir}/adapter_config.json`);
      const safetensors = await store.readBytes(`${dir}/adapter_model.safetensors`);
      post({ type: "adapter", id: m.id, config, safetensors }, [safetensors.buffer]);
      return;
    }
    case "runs":
      post({ type: "runs", runs: await listRuns() });
      return;
    case "clear-runs":
      await store.remove("runs");
      post({ type: "runs", runs: [] });
      return;
  }
}

const WHERE: Record<ToWorker["type"], Extract<FromWorker, { type: "error" }>["where"]> = {
  init: "runtime",
  backend: "runtime",
  "load-model": "model",
  "set-data": "data",
  train: "train",
  resume: "train",
  stop: "train",
  samples: "samples",
  adapter: "train",
  runs: "runtime",
  "clear-runs": "runtime",
};

/**
 * Messages that need not wait for a running training: "stop" must reach it, and a new data file or
 * backend choice is checked at once (a run has its own copy of its data and options).
 */
const UNQUEUED = new Set<ToWorker["type"]>(["stop", "set-data", "backend"]);

// Other messages are handled one at a time, in order.
let queue: Promise<void> = Promise.resolve();
scope.onmessage = (e) => {
  const m = e.data;
  const run = () =>
    handle(m).catch((err: unknown) => {
      post({ type: "error", where: WHERE[m.type], message: err instanceof Error ? err.message : String(err) });
    });
  if (UNQUEUED.has(m.type)) void run();
  else queue = queue.then(run);
};
