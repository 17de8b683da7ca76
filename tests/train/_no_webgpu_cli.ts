/**
 * The CLI on a runtime without WebGPU: hides `navigator.gpu`, then runs `main(argv)`. Lets a test
 * check `--backend webgpu` on a machine that has WebGPU.
 */

Object.defineProperty(globalThis.navigator, "gpu", { value: undefined, configurable: true });
const { main } = await import("../../src/cli/main.ts");
Deno.exit(await main(Deno.args));
