/**
 * Download progress: a bar redrawn in place on a terminal (`\r`), one line per finished file
 * otherwise. Writes to a caller-given sink, as the trainer's progress does.
 *
 * @module
 */

import type { ProgressSink } from "../train/progress.ts";

export type { ProgressSink };

/** `1.5 MB`, `640 kB`, `12 B` (decimal units, as huggingface_hub's tqdm bars). */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** The text of one bar (no carriage return): name, bar, bytes done of total, rate. */
export function formatDownload(name: string, done: number, total: number, bytesPerSecond: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  const rate = bytesPerSecond > 0 ? ` ${formatBytes(bytesPerSecond)}/s` : "";
  return `${name} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(done)}/${formatBytes(total)} ${
    (frac * 100).toFixed(0)
  }%${rate}`;
}

/** The progress of one file's download. */
export class DownloadProgress {
  #sink: ProgressSink | false;
  #name: string;
  #total: number;
  #start = Date.now();
  #startBytes: number;
  #last = 0;
  #drawn = false;

  /** `resumedFrom`: bytes already on disk when this transfer started (not counted in the rate). */
  constructor(sink: ProgressSink | false, name: string, total: number, resumedFrom = 0) {
    this.#sink = sink;
    this.#name = name;
    this.#total = total;
    this.#startBytes = resumedFrom;
  }

  update(done: number): void {
    if (!this.#sink || !this.#sink.isTTY) return;
    const now = Date.now();
    if (now - this.#last < 100 && done < this.#total) return;
    this.#last = now;
    const rate = (done - this.#startBytes) / Math.max(1e-3, (now - this.#start) / 1000);
    this.#sink.write(`\r\x1b[2K${formatDownload(this.#name, done, this.#total, rate)}`);
    this.#drawn = true;
  }

  /** Ends the line (TTY) or prints the finished file (other sinks). */
  finish(note = ""): void {
    if (!this.#sink) return;
    if (this.#sink.isTTY) {
      if (this.#drawn) this.#sink.write(note ? ` ${note}\n` : "\n");
    } else this.#sink.write(`downloaded ${this.#name} (${formatBytes(this.#total)})${note ? ` ${note}` : ""}\n`);
    this.#drawn = false;
  }
}
