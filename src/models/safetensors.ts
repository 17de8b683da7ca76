/**
 * The safetensors format of Hugging Face checkpoints and PEFT adapters: an 8-byte little-endian
 * header length, a JSON header (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}`)
 * and the raw little-endian tensor bytes.
 *
 * Parsing is strict in the same ways as the reference Rust implementation (offsets cover the data
 * section contiguously, byte lengths match the shapes, no duplicate names), so a corrupt or truncated
 * download fails here with a message naming the file and the tensor, not later as wrong numbers.
 *
 * @module
 */

import type { DType } from "../onnx/dtype.ts";
import type { TensorData } from "../onnx/graph.ts";
import { registerExternalSource } from "../onnx/serialize.ts";
import { type FileSource, joinPath } from "../io/files.ts";

/** Element types we read and write (the common ones of HF checkpoints). */
export type SafeDType = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I8" | "U8" | "BOOL";

/** One tensor of a safetensors file; `bytes` is a view into the file's bytes (little-endian). */
export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  bytes: Uint8Array;
}

/** The error of every malformed safetensors file or directory. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/** Bytes per element of each safetensors dtype. */
export const SAFE_DTYPE_BYTES: Readonly<Record<SafeDType, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The safetensors dtype of each of our element types. */
const FROM_DTYPE: Readonly<Record<DType, SafeDType>> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  float64: "F64",
  int64: "I64",
  int32: "I32",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/**
 * The order in which the Rust writer lays tensors out: larger dtypes first (its `Dtype` enum order,
 * descending), then by name. Following it makes our files byte-identical to `save_file`'s.
 */
const WRITE_RANK: Readonly<Record<SafeDType, number>> = {
  I64: 0,
  F64: 1,
  F32: 2,
  I32: 3,
  BF16: 4,
  F16: 5,
  I8: 6,
  U8: 7,
  BOOL: 8,
};

/** The Rust reader refuses headers over 100 MB; so do we (a corrupt length must not allocate gigabytes). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Parses a safetensors file. Tensor bytes are views into `bytes` (no copy).
 *
 * @param bytes the whole file
 * @param source the file name used in error messages
 * @throws {SafetensorsError} on any malformed header, offset, shape, dtype or length
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = "<bytes>",
): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.length < 8) {
    fail(
      `file is ${bytes.length} bytes, too short for the 8-byte header length; the file is truncated or not safetensors`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true), hi = view.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (headerLen > MAX_HEADER_BYTES) {
    fail(
      `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt or not safetensors`,
    );
  }
  if (headerLen > bytes.length - 8) {
    fail(
      `header length ${headerLen} exceeds the ${bytes.length - 8} bytes after the length field; the file is truncated`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("header must be a JSON object of tensors");
  }
  const dup = firstDuplicateKey(text);
  if (dup !== null) fail(`tensor ${JSON.stringify(dup)} appears twice in the header`);

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail(`"__metadata__" must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(`"__metadata__" entry ${JSON.stringify(k)} must be a string, got ${JSON.stringify(v)}`);
        }
        define(metadata, k, v);
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail(`${where}: entry must be an object`);
    const e = raw as Record<string, unknown>;
    for (const field of ["dtype", "shape", "data_offsets"]) {
      if (!(field in e)) fail(`${where}: missing "${field}"`);
    }
    const dtype = e.dtype;
    if (typeof dtype !== "string" || !Object.hasOwn(SAFE_DTYPE_BYTES, dtype)) {
      fail(
        `${where}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(SAFE_DTYPE_BYTES).join(", ")})`,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} must be a list of non-negative integers`);
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(offs)} must be two integers [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] exceed the data section (${dataLen} bytes); the file is truncated`,
      );
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const want = numel * SAFE_DTYPE_BYTES[dtype as SafeDType];
    if (want !== end - begin) {
      fail(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape [${
          (shape as number[]).join(", ")
        }] of ${dtype} needs ${want}`,
      );
    }
    entries.push({ name, dtype: dtype as SafeDType, shape: [...(shape as number[])], begin, end });
  }

  // The tensors must tile the data section: no overlap (two names aliasing bytes), no gap.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: (typeof entries)[number] | null = null;
  for (const t of sorted) {
    if (t.begin < pos && prev !== null) {
      fail(
        `tensor ${JSON.stringify(t.name)}: data_offsets [${t.begin}, ${t.end}] overlap tensor ${
          JSON.stringify(prev.name)
        } [${prev.begin}, ${prev.end}]`,
      );
    }
    if (t.begin > pos) fail(`bytes [${pos}, ${t.begin}) of the data section belong to no tensor`);
    pos = t.end;
    prev = t;
  }
  if (pos !== dataLen) fail(`bytes [${pos}, ${dataLen}) of the data section belong to no tensor`);

  const tensors = new Map<string, SafeTensor>();
  for (const t of entries) {
    tensors.set(t.name, {
      dtype: t.dtype,
      shape: t.shape,
      bytes: bytes.subarray(dataStart + t.begin, dataStart + t.end),
    });
  }
  return { tensors, metadata };
}

/** Sets an own property even for names like `__proto__`, which plain assignment would swallow. */
function define(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * The first top-level key that occurs twice in a JSON object text, or null. `JSON.parse` keeps the
 * last silently; two entries for one tensor name mean a broken writer, so we refuse them.
 * The text must already be valid JSON.
 */
function firstDuplicateKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1 && c === "{";
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

/** Number of elements of a tensor. */
export function numelOf(t: SafeTensor): number {
  let n = 1;
  for (const d of t.shape) n *= d;
  return n;
}

/**
 * The tensor's values as float32: F32 as is, F16 and BF16 upcast exactly, F64 rounded to nearest.
 * An aligned F32 tensor is returned as a view sharing memory with the file's bytes: copy it before
 * mutating.
 *
 * @throws {SafetensorsError} for integer and bool tensors
 */
export function toFloat32(t: SafeTensor, name = "<tensor>"): Float32Array {
  const n = numelOf(t);
  const b = t.bytes;
  switch (t.dtype) {
    case "F32":
      if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, n);
      return new Float32Array(b.slice().buffer, 0, n);
    case "F64": {
      const src = b.byteOffset % 8 === 0
        ? new Float64Array(b.buffer, b.byteOffset, n)
        : new Float64Array(b.slice().buffer);
      return Float32Array.from(src);
    }
    case "F16": {
      const src = b.byteOffset % 2 === 0
        ? new Uint16Array(b.buffer, b.byteOffset, n)
        : new Uint16Array(b.slice().buffer);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32: shifting the bits up is exact.
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = (b[2 * i] | (b[2 * i + 1] << 8)) << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new SafetensorsError(
        `tensor ${JSON.stringify(name)} has dtype ${t.dtype}; only F32, F16, BF16 and F64 convert to float32`,
      );
  }
}

/** IEEE half-precision bits to the (exactly representable) number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** The tensor as float32 {@link TensorData} (see {@link toFloat32} for sharing). */
export function toTensorData(t: SafeTensor, name?: string): TensorData {
  return { dtype: "float32", shape: [...t.shape], data: toFloat32(t, name) };
}

/**
 * The tensor in its stored float type, as a view into the file's bytes where alignment allows (no
 * copy): F32 stays float32, F16 float16 and BF16 bfloat16 (raw 16-bit patterns); F64, which no
 * graph runs, becomes float32.
 *
 * @throws {SafetensorsError} for integer and bool tensors
 */
export function toStoredTensorData(t: SafeTensor, name = "<tensor>"): TensorData {
  const shape = [...t.shape];
  if (t.dtype !== "F16" && t.dtype !== "BF16") return { dtype: "float32", shape, data: toFloat32(t, name) };
  const b = t.bytes;
  const data = b.byteOffset % 2 === 0
    ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2)
    : new Uint16Array(b.slice().buffer);
  return { dtype: t.dtype === "F16" ? "float16" : "bfloat16", shape, data };
}

/** The values of float {@link TensorData} (float32, float64, float16 or bfloat16) as float32 (a copy unless float32). */
export function tensorToFloat32(t: TensorData): Float32Array {
  switch (t.dtype) {
    case "float32":
      return t.data as Float32Array;
    case "float64":
      return Float32Array.from(t.data as Float64Array);
    case "float16": {
      const src = t.data as Uint16Array, out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case "bfloat16": {
      const src = t.data as Uint16Array, out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new SafetensorsError(`a ${t.dtype} tensor has no float32 values`);
  }
}

/**
 * Writes tensors as a safetensors file laid out like the Rust `save_file`: tensors ordered by dtype
 * then name, compact JSON header padded with spaces to 8-byte alignment, `__metadata__` first when
 * given. float16 TensorData (raw uint16 bits) is written as F16.
 *
 * @throws {SafetensorsError} when a tensor's data length does not match its shape
 */
export function serializeSafetensors(
  tensors: Map<string, TensorData> | Record<string, TensorData>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).map(([name, t]) => {
    if (name === "__metadata__") throw new SafetensorsError(`"__metadata__" is reserved and cannot name a tensor`);
    const dtype = FROM_DTYPE[t.dtype];
    let numel = 1;
    for (const d of t.shape) numel *= d;
    if (t.data.length !== numel) {
      throw new SafetensorsError(
        `tensor ${JSON.stringify(name)}: ${t.data.length} values do not fill shape [${t.shape.join(", ")}] (${numel})`,
      );
    }
    return { name, dtype, t };
  });
  list.sort((a, b) => WRITE_RANK[a.dtype] - WRITE_RANK[b.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) define(header, "__metadata__", { ...metadata });
  let offset = 0;
  for (const { name, dtype, t } of list) {
    const nbytes = t.data.byteLength;
    define(header, name, { dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] });
    offset += nbytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const { t } of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Reads a safetensors file and registers its bytes as an external-data source (see `serializeModel`). */
async function readSource(files: FileSource, path: string): Promise<Map<string, SafeTensor>> {
  const bytes = await files.readBytes(path);
  const parsed = parseSafetensors(bytes, path).tensors;
  registerExternalSource(bytes, path.slice(path.lastIndexOf("/") + 1));
  return parsed;
}

/**
 * Reads the weights of a Hugging Face model directory: `model.safetensors`, or the shards listed by
 * `model.safetensors.index.json` (`weight_map`: tensor name → shard file). Each file's bytes are
 * registered as an external-data source, so graphs built from these tensors hand ORT the file
 * itself rather than a copy of the weights.
 *
 * @throws {SafetensorsError} naming the missing file or shard, or a tensor a shard lacks
 */
export async function loadSafetensorsDir(dir: string, files: FileSource): Promise<Map<string, SafeTensor>> {
  const single = joinPath(dir, "model.safetensors");
  if (await files.exists(single)) return await readSource(files, single);
  const indexPath = joinPath(dir, "model.safetensors.index.json");
  if (!(await files.exists(indexPath))) {
    const bin = await files.exists(joinPath(dir, "pytorch_model.bin"));
    throw new SafetensorsError(
      `${dir}: no model.safetensors or model.safetensors.index.json` +
        (bin ? "; pytorch_model.bin (pickle) is not supported: convert it to safetensors first" : ""),
    );
  }
  let index: unknown;
  try {
    index = JSON.parse(await files.readText(indexPath));
  } catch (e) {
    throw new SafetensorsError(`${indexPath}: not valid JSON: ${(e as Error).message}`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new SafetensorsError(`${indexPath}: missing "weight_map" (an object of tensor name to shard file)`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== "string") {
      throw new SafetensorsError(`${indexPath}: weight_map entry ${JSON.stringify(name)} must name a shard file`);
    }
    if (!byShard.has(shard)) byShard.set(shard, []);
    byShard.get(shard)!.push(name);
  }
  const out = new Map<string, SafeTensor>();
  for (const [shard, names] of byShard) {
    const path = joinPath(dir, shard);
    if (!(await files.exists(path))) {
      throw new SafetensorsError(
        `${indexPath}: shard ${JSON.stringify(shard)} (holding ${names.length} tensors) is missing`,
      );
    }
    const tensors = await readSource(files, path);
    for (const name of names) {
      const t = tensors.get(name);
      if (t === undefined) {
        throw new SafetensorsError(`${path}: tensor ${JSON.stringify(name)} listed in the index is not in this shard`);
      }
      out.set(name, t);
    }
  }
  return out;
}
