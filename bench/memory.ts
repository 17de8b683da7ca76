/**
 * The bench's memory profile: where the large buffers of one workload live, phase by phase.
 *
 * - **JS heap** (V8's `heapUsed`) and **external** memory (ArrayBuffers outside the V8 heap: model
 *   files, serialized models, tensors handed to ORT), from `Deno.memoryUsage()` after a GC;
 * - **wasm heap**: the size of ORT's `WebAssembly.Memory`, captured by wrapping the constructor
 *   before ORT loads. A wasm memory only grows, so its size is the high-water mark of ORT's
 *   allocator (weights, activations, arena) and stays resident;
 * - **GPU**: bytes of live `GPUBuffer`s and their peak, counted by wrapping `createBuffer` and
 *   `destroy` on the devices ORT asks for;
 * - **peak RSS** of each phase: `VmHWM`, reset at the start of every phase through
 *   `/proc/self/clear_refs` (Linux). The process peak is the largest phase peak.
 *
 * `install()` must run before ORT is loaded (the worker calls it first thing).
 *
 * @module
 */

/** One phase of a workload and the memory it ended with. */
export interface PhaseMemory {
  phase: string;
  /** Peak RSS during the phase (MB). */
  peakRssMb: number | null;
  /** RSS at the end of the phase (MB). */
  rssMb: number;
  /** V8 heap in use (MB). */
  jsHeapMb: number;
  /** ArrayBuffers and other memory outside the V8 heap (MB). */
  jsExternalMb: number;
  /** ORT's WebAssembly.Memory (MB), 0 while ORT's wasm is not loaded. */
  wasmHeapMb: number;
  /** Live GPU buffers (MB) at the end of the phase, and their peak during it. */
  gpuMb: number;
  gpuPeakMb: number;
}

const MB = 2 ** 20;

/** Tracks memory by phase. One per process (it patches globals). */
export class MemoryProfile {
  readonly phases: PhaseMemory[] = [];
  #memories: WebAssembly.Memory[] = [];
  #gpuLive = 0;
  #gpuPeak = 0;
  #canReset = false;
  #processPeak = 0;

  private constructor() {}

  /** Wraps WebAssembly.Memory and GPU buffer creation; call before ORT loads. */
  static install(): MemoryProfile {
    const p = new MemoryProfile();
    const Orig = WebAssembly.Memory;
    const memories = p.#memories;
    class TrackedMemory extends Orig {
      constructor(d: WebAssembly.MemoryDescriptor) {
        super(d);
        memories.push(this);
      }
    }
    (WebAssembly as unknown as { Memory: typeof WebAssembly.Memory }).Memory = TrackedMemory;
    p.#trackGpu();
    try {
      Deno.writeTextFileSync("/proc/self/clear_refs", "5");
      p.#canReset = readStatus("VmHWM") !== null;
    } catch { /* not Linux, or not allowed: phase peaks become the process peak so far */ }
    return p;
  }

  #trackGpu(): void {
    const GA = (globalThis as { GPUAdapter?: { prototype: GPUAdapter } }).GPUAdapter;
    if (!GA) return;
    const orig = GA.prototype.requestDevice;
    // deno-lint-ignore no-this-alias
    const self = this;
    GA.prototype.requestDevice = async function (this: GPUAdapter, d?: GPUDeviceDescriptor) {
      const device = await orig.call(this, d);
      const create = device.createBuffer.bind(device);
      device.createBuffer = (desc: GPUBufferDescriptor) => {
        const buf = create(desc);
        self.#gpuLive += desc.size;
        self.#gpuPeak = Math.max(self.#gpuPeak, self.#gpuLive);
        const destroy = buf.destroy.bind(buf);
        let gone = false;
        buf.destroy = () => {
          if (!gone) self.#gpuLive -= desc.size;
          gone = true;
          destroy();
        };
        return buf;
      };
      return device;
    };
  }

  /**
   * Runs one phase and records the memory it used. Consecutive phases of the same name (the steps
   * of a steady state) are merged: the peaks are the largest, the rest is the last phase's.
   */
  async phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.#gpuPeak = this.#gpuLive;
    if (this.#canReset) Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    try {
      return await fn();
    } finally {
      this.#record(name);
    }
  }

  #record(name: string): void {
    (globalThis as { gc?: () => void }).gc?.();
    const m = Deno.memoryUsage();
    let peak = readStatus("VmHWM");
    if (peak !== null) this.#processPeak = Math.max(this.#processPeak, peak);
    let gpuPeak = this.#gpuPeak;
    const last = this.phases.at(-1);
    if (last?.phase === name) {
      this.phases.pop();
      if (peak !== null && last.peakRssMb !== null) peak = Math.max(peak, last.peakRssMb);
      gpuPeak = Math.max(gpuPeak, last.gpuPeakMb * MB);
    }
    this.phases.push({
      phase: name,
      peakRssMb: peak,
      rssMb: readStatus("VmRSS") ?? m.rss / MB,
      jsHeapMb: m.heapUsed / MB,
      jsExternalMb: m.external / MB,
      wasmHeapMb: this.#memories.reduce((s, x) => s + x.buffer.byteLength, 0) / MB,
      gpuMb: this.#gpuLive / MB,
      gpuPeakMb: gpuPeak / MB,
    });
  }

  /** The process's peak RSS (MB): the largest phase peak, or VmHWM now when no phase could reset it. */
  processPeakRssMb(): number | null {
    const now = readStatus("VmHWM");
    if (now === null) return null;
    return Math.max(this.#processPeak, now);
  }
}

/** A `/proc/self/status` field in MB, or null off Linux. */
function readStatus(field: "VmHWM" | "VmRSS"): number | null {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

/** The profile as bench runs (`mem.<phase>.<what>`, MB), for results files and tables. */
export function profileRuns(
  p: MemoryProfile,
  base: { workload: string; backend: string; threads: number },
): { workload: string; backend: string; threads: number; metric: string; value: number | null; unit: string }[] {
  const out = [];
  for (const ph of p.phases) {
    const fields: [string, number | null][] = [
      ["peak_rss", ph.peakRssMb],
      ["js_heap", ph.jsHeapMb],
      ["js_external", ph.jsExternalMb],
      ["wasm_heap", ph.wasmHeapMb],
      ["gpu", ph.gpuPeakMb],
    ];
    for (const [k, v] of fields) out.push({ ...base, metric: `mem.${ph.phase}.${k}`, value: v, unit: "MB" });
  }
  return out;
}

/** A text table of the phases (MB). */
export function profileTable(p: MemoryProfile): string {
  const head = ["phase", "peak RSS", "RSS", "JS heap", "JS external", "wasm heap", "GPU (peak)"];
  const f = (v: number | null) => (v === null ? "-" : v.toFixed(0));
  const rows = p.phases.map((
    ph,
  ) => [
    ph.phase,
    f(ph.peakRssMb),
    f(ph.rssMb),
    f(ph.jsHeapMb),
    f(ph.jsExternalMb),
    f(ph.wasmHeapMb),
    `${f(ph.gpuMb)} (${f(ph.gpuPeakMb)})`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}
