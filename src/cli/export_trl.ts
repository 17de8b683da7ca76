/**
 * `export-trl --model M --data FILE --out DIR [train options]`: writes `train_trl.py` and
 * `trl_config.json` to DIR, the same run for TRL on GPUs (`src/export/trl.ts` has the mapping).
 * Takes exactly `train`'s options; the model's config, the init adapter and the data are checked
 * here, so a bad run fails before anything is written.
 *
 * @module
 */

import process from "node:process";
import { readDataset } from "../data/formats.ts";
import { exportTrl, TRL_VERSION } from "../export/trl.ts";
import { resolveModelSource } from "../hub/source.ts";
import { joinPath, localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { createLoraConfig } from "../lora/config.ts";
import { loraTargets } from "../lora/targets.ts";
import { parseModelConfig } from "../models/config.ts";
import { flag, omitOptions } from "../options/table.ts";
import { resolveTrainOptions, TRAIN_OPTIONS, type TrainOptions } from "../train/trainer.ts";
import { TRAIN_FILE_OPTIONS } from "../train/options.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, parseFlags, UsageError } from "./flags.ts";

/**
 * `train`'s option table without what changes where or how often a run happens rather than what it
 * trains (those have no meaning for a TRL script), plus `--help`.
 */
const FLAGS = {
  ...omitOptions(TRAIN_OPTIONS, ["backend", "threads", "checkpointEvery", "keepCheckpoints", "resume", "order"]),
  data: TRAIN_FILE_OPTIONS.data,
  out: { ...TRAIN_FILE_OPTIONS.out, help: "directory for train_trl.py and trl_config.json" },
  help: flag({ help: "show this help", fingerprint: false }),
} as const;

const help = () =>
  helpText(
    `Usage: deno task cli export-trl --model M --data FILE --out DIR [train options]

Writes DIR/train_trl.py and DIR/trl_config.json: the run that \`train\` would make, as a TRL ${TRL_VERSION}
DPOTrainer script (loss_type "exo_pair" for exo-pref, "sigmoid" for dpo-pref; same beta, epsilon,
LoRA, learning rate and schedule, batch size, data file). Run it with
  accelerate launch DIR/train_trl.py --output-dir runs/trl [--max-steps N]
Takes the options of \`deno task cli train --help\` but --backend, --threads, --checkpoint-every,
--keep-checkpoints and --resume (they do not change the run) and --order (TRL's sampler shuffles). exo-rw and dpo-rw
have no TRL counterpart.`,
    FLAGS,
  );

function absolute(p: string): string {
  return p.startsWith("/") ? p : joinPath(process.cwd(), p);
}

/** CLI entry; exit 2 for options or input that cannot be exported. */
export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseFlags(FLAGS, argv);
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}${e instanceof UsageError ? `\n\n${help()}` : ""}`);
    return 2;
  }
  if (args.help) {
    console.log(help());
    return 0;
  }
  try {
    const { help: _help, ...options } = args;
    const o = resolveTrainOptions(options as TrainOptions);
    // This command's table makes `data` a file and `out` a directory, both required.
    const dataPath = o.data as string, outDir = o.out as string;
    const files = localFiles();
    const modelName = o.model as string;
    const source = await resolveModelSource(modelName, files, "config", { revision: o.revision });
    const configPath = joinPath(source.dir, "config.json");
    const modelConfig = parseModelConfig(JSON.parse(await source.files.readText(configPath)), configPath);
    let lora;
    if (o.initAdapter) lora = (await readAdapter(o.initAdapter, files, modelConfig)).config;
    else {
      lora = createLoraConfig(modelConfig, {
        r: o.loraR,
        alpha: o.loraAlpha ?? undefined,
        targetModules: o.target ?? undefined,
        useRslora: o.rslora,
      });
      loraTargets(modelConfig, lora); // unknown target names fail here, as in train
    }
    const data = await readDataset(dataPath, { files, vocabSize: modelConfig.vocabSize });
    const out = exportTrl(o, {
      model: source.hub
        ? { kind: "hub", repo: source.hub.repo, revision: source.hub.commit }
        : { kind: "dir", path: absolute(modelName) },
      modelConfig,
      lora,
      data: {
        path: absolute(dataPath),
        kind: data.kind,
        tokenized: data.tokenized,
        conversational: data.conversational,
      },
      initAdapter: o.initAdapter ? absolute(o.initAdapter) : null,
      command: `exo-tune export-trl ${argv.join(" ")}`,
    });
    await files.mkdir(outDir);
    for (const [name, text] of Object.entries(out.files)) await files.writeText(joinPath(outDir, name), text);
    for (const n of out.notes) console.error(`note: ${n}`);
    console.error(`wrote ${Object.keys(out.files).map((f) => joinPath(outDir, f)).join(" and ")}`);
    console.log(`accelerate launch ${joinPath(outDir, "train_trl.py")} --output-dir runs/trl`);
    return 0;
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return isInputError(e) || e instanceof SyntaxError ? 2 : 1;
  }
}
