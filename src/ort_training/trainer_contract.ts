/**
 * What the preference trainer needs of a directory of ORT training artifacts (ours or Python's)
 * beyond ORT's own contract (`checkArtifacts`): LoRA parameters named as PEFT names them and
 * matching the adapter, and user inputs it knows how to feed, with their types. Checked when the
 * trainer is created, before anything is written.
 *
 * @module
 */

import { type FileSource, joinPath } from "../io/files.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { INPUT } from "../train/preference_graph.ts";
import { ARTIFACT_FILES, ArtifactError, type ArtifactsInfo, checkArtifacts, readArtifacts } from "./artifacts.ts";

/** The user inputs the preference trainer feeds, with their TensorProto element types. */
export const FEEDABLE: Readonly<Record<string, number>> = {
  [INPUT.inputIds]: 7,
  [INPUT.attentionMask]: 7,
  [INPUT.targets]: 7,
  [INPUT.completionMask]: 1,
  [INPUT.refLogps]: 1,
  [INPUT.rewards]: 1,
};

/** Inputs a preference loss cannot do without. */
const REQUIRED = [INPUT.inputIds, INPUT.targets, INPUT.completionMask, INPUT.refLogps];

/** Reads a directory, checks ORT's contract and the trainer's; throws ArtifactError naming the file. */
export async function checkArtifactsDir(
  dir: string,
  files: FileSource,
  adapter: LoraAdapter,
): Promise<{ bytes: Awaited<ReturnType<typeof readArtifacts>>; info: ArtifactsInfo }> {
  const bytes = await readArtifacts(dir, files);
  const info = checkArtifacts(bytes, dir);
  checkPreferenceArtifacts(info, adapter, dir);
  return { bytes, info };
}

/** The trainer's part of the contract (see the module doc). */
export function checkPreferenceArtifacts(info: ArtifactsInfo, adapter: LoraAdapter, dir: string): void {
  const ckpt = joinPath(dir, ARTIFACT_FILES.checkpoint), tf = joinPath(dir, ARTIFACT_FILES.trainingModel);
  const bad = info.params.filter((p) => p.key === null).map((p) => p.name);
  if (bad.length) {
    throw new ArtifactError(
      ckpt,
      `trainable parameters must be LoRA matrices named as PEFT names them (base_model.model.<module>.lora_A[.<adapter>].weight); found ${
        bad.slice(0, 5).join(", ")
      }`,
    );
  }
  const keys = new Set(info.params.map((p) => p.key!));
  const missing = [...adapter.tensors.keys()].filter((k) => !keys.has(k));
  const extra = [...keys].filter((k) => !adapter.tensors.has(k));
  if (missing.length || extra.length) {
    throw new ArtifactError(
      ckpt,
      `its LoRA parameters do not match the adapter config's targets (missing: ${
        missing.slice(0, 3).join(", ") || "none"
      }; unexpected: ${extra.slice(0, 3).join(", ") || "none"})`,
    );
  }
  for (const v of info.userInputs) {
    const want = FEEDABLE[v.name];
    if (want === undefined) {
      throw new ArtifactError(
        tf,
        `input ${v.name} is not one the preference trainer feeds (${
          Object.keys(FEEDABLE).join(", ")
        }); see the README's ORT training section`,
      );
    }
    if (v.elemType !== want) {
      throw new ArtifactError(
        tf,
        `input ${v.name} must be ${want === 7 ? "int64" : "float"}, got TensorProto type ${v.elemType}`,
      );
    }
  }
  for (const need of REQUIRED) {
    if (!info.userInputs.some((v) => v.name === need)) {
      throw new ArtifactError(
        tf,
        `input ${need} is missing: the preference loss needs it (see the README's ORT training section)`,
      );
    }
  }
}
