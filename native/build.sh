#!/usr/bin/env bash
# Builds libtaskmerge.so and its managed payload into OUT_DIR:
#   OUT_DIR/libtaskmerge.so        the C ABI of include/taskmerge.h (native/taskmerge.c + the SDK's static libnethost)
#   OUT_DIR/taskmerge/             TaskMerge.Native.dll and the engine; with --self-contained also the .NET runtime
# Usage: native/build.sh OUT_DIR [--self-contained]
# Without --self-contained the payload runs on an installed .NET 10 runtime (found as `dotnet` finds it);
# with it, nothing but OUT_DIR is needed on the user's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: native/build.sh OUT_DIR [--self-contained]}
mode=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)

dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
pack=$(ls -d "$dotnet_root"/packs/Microsoft.NETCore.App.Host.linux-x64/*/runtimes/linux-x64/native | sort -V | tail -1)
[ -f "$pack/libnethost.a" ] || { echo "native/build.sh: libnethost.a not found under $dotnet_root/packs" >&2; exit 1; }

rm -rf "$out/taskmerge"
publish=(dotnet publish src/Native/Native.csproj -c Release -o "$out/taskmerge" -p:DebugType=none -nologo -v:q)
if [ "$mode" = "--self-contained" ]; then
  publish+=(-r linux-x64 --self-contained true -p:InvariantGlobalization=true)
else
  publish+=(--no-self-contained -p:UseAppHost=false)
fi
"${publish[@]}"

${CC:-cc} -shared -fPIC -O2 -std=c11 -Wall -Wextra -Werror -fvisibility=hidden \
  -Iinclude -I"$pack" native/taskmerge.c "$pack/libnethost.a" -ldl -lpthread -lstdc++ \
  -Wl,--no-undefined -Wl,-soname,libtaskmerge.so -o "$out/libtaskmerge.so"
echo "native/build.sh: $out/libtaskmerge.so ($mode)"
