#!/usr/bin/env bash
# Builds the carry set of bench/gpu-check.sh in .gpu-carry/ (git-ignored), on a Linux x86-64 machine
# where `npm ci` has run: what the GPU check needs that a GPU machine with no network lacks.
#
#   deno.xz                  the Deno binary from npm, xz with the x86 filter (96 MB -> 27.5 MiB)
#   libonnxruntime.so.1.xz   onnxruntime-node's linux/x64 library, likewise (46 MB -> ~11 MiB)
#   node_modules.tar.xz      the rest of node_modules the check imports (~5.5 MiB, mostly two .wasm
#                            files): onnxruntime-web's WebGPU and wasm bundles, onnxruntime-node's JS
#                            and binding, onnxruntime-common, protobufjs, @huggingface/tokenizers,
#                            and what loadModel imports since the Hub and chat-template work
#                            (@huggingface/hub with its xetchunk-wasm chain, @huggingface/jinja,
#                            flatbuffers)
#   vulkan/*.deb             Debian's Vulkan loader and GLVND dispatch (~0.3 MiB), unpacked by the
#                            check only where the machine has no libvulkan.so.1
#
# Then prints the sizes and the total that travels with the repository's tracked files (the device
# tool's limit is 64 MiB for both together). Compressed files newer than their source are reused.
#
#   bench/gpu-carry.sh [--lean] [--no-debs]
#
# --lean leaves out ORT Web's plain wasm build (2.1 MiB): the check then cannot measure its wasm
# baseline and records it as unavailable. Without --lean the script falls back to it by itself
# when the full set would not fit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu-carry
nm=node_modules
[ -x "$nm/@deno/linux-x64-glibc/deno" ] || { echo "run npm ci first (no $nm/@deno/linux-x64-glibc/deno)"; exit 1; }
[ -f "$nm/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ] ||
  { echo "onnxruntime-node is not installed (npm ci without --omit=optional)"; exit 1; }
lean=false debs=true
for a in "$@"; do
  case $a in
    --lean) lean=true ;;
    --no-debs) debs=false ;;
    *) echo "unknown option $a"; exit 2 ;;
  esac
done
mkdir -p "$out"
rm -rf "$out/node_modules.tar.xz" "$out/vulkan"
mkdir -p "$out/vulkan"

# Executables: xz with the x86 branch filter (3-9% smaller); skipped when already built from this file.
pack_binary() { # src dst
  if [ "$2" -nt "$1" ]; then echo "$2 (reused)"; return; fi
  echo "$2 ..."
  xz --x86 --lzma2=preset=9e,dict=128MiB -T0 -c "$1" >"$2.tmp" && mv "$2.tmp" "$2"
}
pack_binary "$nm/@deno/linux-x64-glibc/deno" "$out/deno.xz"
pack_binary "$nm/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$out/libonnxruntime.so.1.xz"

files=(
  "$nm/onnxruntime-web/package.json"
  "$nm/onnxruntime-web/dist/ort.webgpu.bundle.min.mjs"
  "$nm/onnxruntime-web/dist/ort.wasm.bundle.min.mjs"
  "$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm"
  "$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs"
  "$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs"
  "$nm/onnxruntime-node/package.json"
  "$nm/onnxruntime-node/dist"
  "$nm/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node"
  "$nm/onnxruntime-common/package.json"
  "$nm/onnxruntime-common/dist/cjs"
  "$nm/onnxruntime-common/dist/esm"
  "$nm/protobufjs/package.json"
  "$nm/protobufjs/minimal.js"
  "$nm/protobufjs/src"
  "$nm/@protobufjs"
  "$nm/long"
  "$nm/@huggingface/tokenizers"
  "$nm/@huggingface/jinja/package.json"
  "$nm/@huggingface/jinja/dist"
  "$nm/@huggingface/hub/package.json"
  "$nm/@huggingface/hub/dist"
  "$nm/@huggingface/xetchunk-wasm"
  "$nm/@huggingface/blake3-jit"
  "$nm/gearhash-jit"
  "$nm/flatbuffers/package.json"
  "$nm/flatbuffers/js"
)
pack_modules() {
  local list=("${files[@]}")
  $lean || list+=("$nm/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm")
  echo "$out/node_modules.tar.xz$($lean && echo ' (lean: no plain wasm build)') ..."
  tar -cf - --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' "${list[@]}" | xz -9e -T0 >"$out/node_modules.tar.xz"
}
pack_modules

if $debs; then
  echo "vulkan/*.deb ..."
  # Debian's amd64 packages (the GPU machine is x86-64 whatever this one is).
  lists=$(mktemp -d)
  apt_o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists" -qq)
  mkdir -p "$lists/partial"
  # The loader, and GLVND's libGLdispatch, which NVIDIA's Vulkan ICD (libGLX_nvidia.so.0) links against.
  if apt-get "${apt_o[@]}" update && (cd "$out/vulkan" && apt-get "${apt_o[@]}" download libvulkan1 libglvnd0); then
    :
  else
    echo "  (no Debian packages reachable: the GPU machine must have libvulkan.so.1 itself)"
  fi
  rm -rf "$lists"
fi

limit=$((64 * 1048576))
bytes() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
if ! $lean && [ $(($(bytes "$out") + tracked)) -gt "$limit" ]; then
  echo "the full set does not fit beside the tracked files: leaving out the plain wasm build"
  lean=true
  pack_modules
fi
carried=$(bytes "$out")
mib() { awk -v b="$1" 'BEGIN {printf "%.2f MiB", b / 1048576}'; }
for f in "$out"/* "$out"/vulkan/*; do [ -f "$f" ] && printf '  %-40s %s\n' "$f" "$(mib "$(stat -c %s "$f")")"; done
echo "carry set $(mib "$carried") + tracked files $(mib "$tracked") = $(mib $((carried + tracked))) (limit 64 MiB)$($lean && echo '; lean: no wasm baseline')"
if [ $((carried + tracked)) -gt "$limit" ]; then
  echo "over 64 MiB even without the plain wasm: leave models/ out of the working tree that travels (README, GPU check)"
  exit 3
fi
