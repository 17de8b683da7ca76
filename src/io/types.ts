/**
 * The file interfaces the library reads and writes through, in a module of their own so that every
 * implementation (files.ts, memory.ts, opfs.ts) can name them without importing another.
 *
 * @module
 */

/** Read access to a tree of files addressed by `/`-separated paths. */
export interface FileSource {
  /** Reads a whole file. Throws an error naming the path when it is missing. */
  readBytes(path: string): Promise<Uint8Array>;
  /** Reads a UTF-8 text file. */
  readText(path: string): Promise<string>;
  /** True when the file exists. */
  exists(path: string): Promise<boolean>;
}

/** Write access, for adapters, checkpoints and metrics. Writes are atomic (temp file + rename). */
export interface FileSink {
  writeBytes(path: string, data: Uint8Array): Promise<void>;
  writeText(path: string, text: string): Promise<void>;
  appendText(path: string, text: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** Names of the entries of a directory (empty when it does not exist). */
  list(path: string): Promise<string[]>;
}
