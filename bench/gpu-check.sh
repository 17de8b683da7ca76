#!/usr/bin/env bash
# The GPU check: on a Linux x86-64 machine with a GPU (NVIDIA or other, with Vulkan drivers), no
# network and no Deno, runs `doctor`, the golden SGD step on native-webgpu (onnxruntime-node's Dawn)
# and on webgpu (Deno's WebGPU), and train-small / score-small / decode-small on both, plus the
# wasm-1-thread and native-cpu baselines, in under 10 minutes. Results, three files: DIR/gpu-check.json
# (summary, doctor, golden errors, every bench run), DIR/log.txt (everything printed, with the bench
# tables) and DIR/nvidia-smi.txt; the bench suites' own files stay in $TMPDIR/exo-tune-gpu-check/bench.
#
#   bench/gpu-check.sh [DIR]          (DIR defaults to $OUT, else ./gpu-check-results)
#
# What it needs besides the repository comes from the carry set that bench/gpu-carry.sh builds here
# (.gpu-carry/: Deno xz-compressed, node_modules pruned to what the check runs, Vulkan loader .debs),
# unless the machine already has node_modules/ and Deno. Every step that cannot run is recorded and
# skipped, never fatal: a machine without a usable GPU still yields a JSON that says why.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${1:-${OUT:-$root/gpu-check-results}}
carry=${GPU_CARRY:-$root/.gpu-carry}
work=${TMPDIR:-/tmp}/exo-tune-gpu-check
mkdir -p "$dir" "$work"
exec > >(tee -a "$dir/log.txt") 2>&1
t0=$(date +%s)
say() { echo "[gpu-check.sh $(($(date +%s) - t0))s] $*"; }

# xz -d, or Python's lzma where xz is missing.
unxz_to() { # src dst
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$1" "$2"; fi
}

# --- Deno
deno=""
for d in "$root/node_modules/.bin/deno" "$(command -v deno || true)" "$work/deno"; do
  if [ -n "$d" ] && [ -x "$d" ] && "$d" --version >/dev/null 2>&1; then deno=$d; break; fi
done
if [ -z "$deno" ] && [ -f "$carry/deno.xz" ]; then
  mkdir -p "$work"
  say "unpacking Deno from $carry/deno.xz"
  unxz_to "$carry/deno.xz" "$work/deno" && chmod +x "$work/deno" && deno=$work/deno
fi
if [ -z "$deno" ]; then say "no Deno: run bench/gpu-carry.sh where npm works and carry .gpu-carry/"; exit 1; fi
export DENO_NO_UPDATE_CHECK=1 DENO_DIR=${DENO_DIR:-$work/deno-dir} NO_COLOR=1
say "deno: $("$deno" --version | head -n 1)"

# --- node_modules (pruned)
if [ ! -f "$root/node_modules/onnxruntime-web/package.json" ] || [ ! -f "$root/node_modules/onnxruntime-node/package.json" ]; then
  if [ -f "$carry/node_modules.tar.xz" ]; then
    say "unpacking node_modules from $carry/node_modules.tar.xz"
    if tar --version >/dev/null 2>&1 && command -v xz >/dev/null; then tar -xJf "$carry/node_modules.tar.xz" -C "$root"
    else python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$carry/node_modules.tar.xz" "$root"; fi
    lib=$root/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
    if [ -f "$carry/libonnxruntime.so.1.xz" ] && [ ! -f "$lib" ]; then unxz_to "$carry/libonnxruntime.so.1.xz" "$lib"; fi
  else
    say "no node_modules and no $carry/node_modules.tar.xz: run bench/gpu-carry.sh"; exit 1
  fi
fi

# --- Vulkan: the loader (libvulkan.so.1) from the carried .debs when the image has none, and the
# GPU vendor's ICD (NVIDIA's JSON in the usual places, or the driver mount /usr/local/nvidia).
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
if ! "$ldconfig" -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
  if compgen -G "$carry/vulkan/*.deb" >/dev/null; then
    say "no Vulkan loader on this machine: unpacking the carried .debs into $work/vk"
    for f in "$carry"/vulkan/*.deb; do dpkg -x "$f" "$work/vk" 2>/dev/null || (cd "$work" && ar x "$f" data.tar.xz && mkdir -p vk && tar -xJf data.tar.xz -C vk); done
    export LD_LIBRARY_PATH="$work/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    say "no Vulkan loader (libvulkan.so.1) and none carried: the GPU paths will report no adapter"
  fi
fi
for l in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$l" ] && export LD_LIBRARY_PATH="$l${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for j in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
    if [ -f "$j" ]; then export VK_DRIVER_FILES=$j VK_ICD_FILENAMES=$j; break; fi
  done
fi
say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-<loader default>} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee "$dir/nvidia-smi.txt"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work/xdg} XDG_CACHE_HOME=${XDG_CACHE_HOME:-$work/cache}
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CACHE_HOME"

# --- the check: 9 minutes of budget inside a 9.5-minute hard limit (10 minutes in all).
left=$((570 - ($(date +%s) - t0)))
timeout --kill-after=10 "$left" "$deno" run -A bench/gpu_check.ts --out "$dir" --bench-dir "$work/bench" \
  --budget-s $((left - 30)) "${@:2}"
code=$?
say "exit $code; results in $dir/gpu-check.json"
exit $code
