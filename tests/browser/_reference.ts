/**
 * What the browser tests compare the page against: the same run with the Deno engine (wasm, in this
 * process), and the adapter the page let the user download.
 */

import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { type LoraAdapter, readAdapter } from "../../src/lora/adapter.ts";
import { Trainer } from "../../src/train/trainer.ts";
import type { Page } from "playwright-core";
import { ARTIFACTS, ROOT } from "./_browser.ts";

/** The run options the tests give the page (its option form) and the Deno trainer alike. */
export interface RunSpec {
  model: string; // fixture model directory name
  data: string; // fixture data file name
  steps: number;
  batch: number;
  lr: number;
  r: number;
  seed: number;
  /**
   * wasm threads, on the page (its `threads` URL parameter) and in the Deno trainer alike: ORT's
   * kernels split their sums by thread, so results across thread counts differ by ~1e-6 after a few
   * steps (measured 1.3e-6 here, 1 thread against 2); only equal counts are bit-identical. ORT's
   * count is fixed per process once loaded, so every spec in one test process uses the same one.
   */
  threads: number;
}

const cache = new Map<string, Promise<LoraAdapter>>();

/** The adapter the Deno engine (wasm backend) writes for the spec, trained once per spec. */
export function denoAdapter(spec: RunSpec): Promise<LoraAdapter> {
  const key = JSON.stringify(spec);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const out = await Deno.makeTempDir({ prefix: "exo-tune-browser-ref-" });
      try {
        const trainer = await Trainer.create({
          model: `${ROOT}/tests/fixtures/${spec.model}`,
          data: `${ROOT}/tests/fixtures/${spec.data}`,
          out,
          loss: "exo-pref",
          backend: "wasm",
          maxSteps: spec.steps,
          epochs: 1000, // as the page: maxSteps decides
          batchSize: spec.batch,
          lr: spec.lr,
          beta: 0.1,
          loraR: spec.r,
          seed: spec.seed,
          threads: spec.threads,
          checkpointEvery: 0,
        });
        await trainer.train();
        return await readAdapter(out, localFiles());
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    })();
    cache.set(key, p);
  }
  return p;
}

/** Clicks the page's two download links and reads the PEFT adapter they give (saved under ARTIFACTS/name). */
export async function downloadAdapter(page: Page, name: string): Promise<{ adapter: LoraAdapter; dir: string }> {
  const dir = `${ARTIFACTS}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  for (const id of ["dl-config", "dl-weights"]) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(`#${id}`)]);
    await download.saveAs(`${dir}/${download.suggestedFilename()}`);
  }
  assert.deepEqual(
    [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
    ["adapter_config.json", "adapter_model.safetensors"],
  );
  return { adapter: await readAdapter(dir, localFiles()), dir };
}

/**
 * The largest |a - b| over every tensor, after checking both adapters hold the same tensors with the
 * same shapes and the same LoRA config (the base model's path differs: a URL path in the page).
 */
export function maxAdapterDiff(a: LoraAdapter, b: LoraAdapter): number {
  const { baseModelNameOrPath: _a, ...ca } = a.config as unknown as Record<string, unknown>;
  const { baseModelNameOrPath: _b, ...cb } = b.config as unknown as Record<string, unknown>;
  assert.deepEqual(ca, cb);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  let worst = 0;
  for (const [k, ta] of a.tensors) {
    const tb = b.tensors.get(k)!;
    assert.deepEqual(ta.shape, tb.shape, k);
    const x = ta.data as Float32Array, y = tb.data as Float32Array;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

/** The largest |value| of an adapter's tensors (the scale its differences are read against). */
export function maxAbs(a: LoraAdapter): number {
  let m = 0;
  for (const t of a.tensors.values()) for (const v of t.data as Float32Array) m = Math.max(m, Math.abs(v));
  return m;
}
