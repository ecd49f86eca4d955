#!/usr/bin/env bash
# Long fuzzing runs of Cairn's decoders (docs/faults.md, "Fuzzing").
#
#   scripts/fuzz.sh mutate TARGET [SECONDS] [SEED]   the built-in mutation fuzzer (default 600 s, seed 1)
#   scripts/fuzz.sh afl    TARGET [SECONDS]          AFL++ through SharpFuzz (installs afl++ and the sharpfuzz tool)
#   scripts/fuzz.sh repro  TARGET FILE...            runs saved inputs (a failure's file, or AFL's crashes/)
#   scripts/fuzz.sh list                             the targets
#
# Targets: protocol, peer, peer-frames, storage, storage-encrypted, wal.
# Output goes under ${CAIRN_FUZZ_DIR:-.fuzz} (ignored by git). Exit code 1 when a failure or crash was found.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${CAIRN_FUZZ_DIR:-$root/.fuzz}"
mode="${1:-}"
target="${2:-}"

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

build() {
    # A plain Release build for the mutation fuzzer; a self-contained publish folder for AFL, whose assemblies get instrumented.
    dotnet build "$root/tests/Cairn.Fuzz/Cairn.Fuzz.csproj" -c Release -warnaserror -v q -nologo >/dev/null
}

fuzzdll="$root/tests/Cairn.Fuzz/bin/Release/net10.0/Cairn.Fuzz.dll"

case "$mode" in
    list)
        build
        dotnet "$fuzzdll" list
        ;;
    mutate)
        [ -n "$target" ] || usage
        seconds="${3:-600}"
        seed="${4:-1}"
        build
        dotnet "$fuzzdll" mutate "$target" --seed "$seed" --seconds "$seconds"
        ;;
    repro)
        [ -n "$target" ] && [ $# -ge 3 ] || usage
        build
        shift 2
        dotnet "$fuzzdll" repro "$target" "$@"
        ;;
    afl)
        [ -n "$target" ] || usage
        seconds="${3:-600}"
        if ! command -v afl-fuzz >/dev/null; then
            echo "installing afl++ (apt-get)"
            if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq afl++ >/dev/null
        fi
        tools="$work/tools"
        if [ ! -x "$tools/sharpfuzz" ]; then
            echo "installing the sharpfuzz tool (SharpFuzz.CommandLine 2.3.0)"
            dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
        fi
        out="$work/afl-$target"
        bin="$out/bin"
        rm -rf "$bin"
        mkdir -p "$out"
        dotnet publish "$root/tests/Cairn.Fuzz/Cairn.Fuzz.csproj" -c Release -o "$bin" -v q -nologo >/dev/null
        # The seeds come from the real encoders, so they are written before the assemblies are instrumented (instrumented
        # code may only run under afl-fuzz, which provides the coverage map).
        [ "$target" = peer ] && target=peer-frames # the socket round trip of 'peer' is slow under AFL: same decoders, no socket
        rm -rf "$out/in"
        dotnet "$bin/Cairn.Fuzz.dll" seeds "$target" "$out/in" >/dev/null
        # Instrument the assemblies that hold the decoders under test (AFL sees their branches, not the runtime's).
        case "$target" in
            protocol) libs="Cairn.Protocol" ;;
            peer|peer-frames) libs="Cairn.Protocol Cairn.Server" ;;
            storage|storage-encrypted) libs="Cairn.Storage" ;;
            wal) libs="Cairn.Raft" ;;
            *) echo "unknown target $target"; exit 2 ;;
        esac
        for lib in $libs; do "$tools/sharpfuzz" "$bin/$lib.dll" >/dev/null; done
        echo "afl-fuzz on $target for $seconds s; findings in $out/findings"
        set +e
        AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
            timeout --signal=INT "$seconds" afl-fuzz -i "$out/in" -o "$out/findings" -t 10000 -m none \
            -- dotnet "$bin/Cairn.Fuzz.dll" afl "$target" > "$out/afl.log" 2>&1
        set -e
        stats="$out/findings/default/fuzzer_stats"
        if [ ! -f "$stats" ]; then
            echo "afl-fuzz did not start; its log:"
            tail -30 "$out/afl.log"
            exit 1
        fi
        grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg)' "$stats"
        crashes=$(find "$out/findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
        if [ "$crashes" -gt 0 ]; then
            echo "$crashes crashing inputs in $out/findings/default/crashes; replay: scripts/fuzz.sh repro $target $out/findings/default/crashes/id:*"
            exit 1
        fi
        echo "no crashes"
        ;;
    *)
        usage
        ;;
esac
