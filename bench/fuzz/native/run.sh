#!/usr/bin/env bash
# Coverage-guided fuzzing of Cairn's parsers with libFuzzer (see README.md).
#
#   bench/fuzz/native/run.sh                      build, then fuzz every target for FUZZ_RUNS inputs
#   bench/fuzz/native/run.sh FuzzJSON             only the named target(s)
#   bench/fuzz/native/run.sh --replay [target…]   build, then run every file in crashes/<target>/
#                                                 once (a plain input run, no fuzzing); fails if any
#                                                 of them still crashes
#
# Variables: FUZZ_RUNS (default 1000000), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_MAX_LEN (bytes, default 4096), FUZZ_SEED (libFuzzer -seed, default 0 = random),
# FUZZ_MINIMIZE=1 (after a crash, also write a minimised input next to it, `<name>.min`, with at
# most 2 minutes of trying), FUZZ_SKIP_BUILD=1, FUZZ_WORK (working directory, default a new
# mktemp -d under /tmp), FUZZ_REFUSE_HUGE_ALLOCS=1 (see below).
#
# A single allocation above the RSS limit (2048 MB) is an out-of-memory crash for libFuzzer, even
# when the memory is never touched. FUZZ_REFUSE_HUGE_ALLOCS=1 makes such allocations fail
# instead (ASan returns NULL above 2048 MB, as malloc does on a host that cannot provide it), so
# the code's own out-of-memory handling runs and fuzzing continues past the known finding
# crashes/FuzzRESP/oom-* (README.md). Off by default.
#
# Builds with the scratch path .build-fuzz at the repository root, never the main .build, and
# runs everything under `nice -n 10`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
scratch="$root/.build-fuzz"
all_targets=(FuzzJSON FuzzExpression FuzzRESP)

runs="${FUZZ_RUNS:-1000000}"
timeout="${FUZZ_TIMEOUT:-10}"
max_len="${FUZZ_MAX_LEN:-4096}"
seed="${FUZZ_SEED:-0}"

replay=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --replay) replay=1 ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        Fuzz*) targets+=("$arg") ;;
        *) echo "run.sh: unknown argument '$arg' (targets: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "run.sh: unknown target '$target'" >&2; exit 2; }
done

if [[ "${FUZZ_SKIP_BUILD:-0}" != 1 ]]; then
    echo "== building ${targets[*]} (release, scratch path $scratch)"
    for target in "${targets[@]}"; do
        nice -n 10 swift build -c release --package-path "$here" --scratch-path "$scratch" --product "$target"
    done
fi
if [[ "${FUZZ_REFUSE_HUGE_ALLOCS:-0}" == 1 ]]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1:max_allocation_size_mb=2048"
    echo "== ASAN_OPTIONS=$ASAN_OPTIONS (allocations above 2048 MB fail instead of crashing)"
fi
bin="$(swift build -c release --package-path "$here" --scratch-path "$scratch" --show-bin-path)"

# --replay: every committed crash input, one plain run each.
if [[ $replay == 1 ]]; then
    failed=0
    for target in "${targets[@]}"; do
        inputs=()
        if [[ -d "$here/crashes/$target" ]]; then
            while IFS= read -r -d '' file; do inputs+=("$file"); done \
                < <(find "$here/crashes/$target" -type f ! -name '.*' -print0 | sort -z)
        fi
        if [[ ${#inputs[@]} -eq 0 ]]; then
            echo "$target: no regression inputs in crashes/$target/"
            continue
        fi
        for file in "${inputs[@]}"; do
            rc=0
            log="$(mktemp)"
            nice -n 10 "$bin/$target" -timeout="$timeout" -rss_limit_mb=2048 "$file" >"$log" 2>&1 || rc=$?
            if [[ $rc -eq 0 ]]; then
                echo "$target: pass  ${file#"$root/"}"
            else
                echo "$target: FAIL  ${file#"$root/"} (exit $rc)"
                grep -E 'ERROR|Fatal error|SUMMARY|^ *#[0-9]+ 0x' "$log" | grep -v llvm-project | head -12 \
                    | sed 's/^/    /' || true
                failed=1
            fi
            rm -f "$log"
        done
    done
    exit $failed
fi

work="${FUZZ_WORK:-$(mktemp -d /tmp/cairn-fuzz.XXXXXX)}"
mkdir -p "$work"
echo "== working directory $work (corpus copies, logs, artifacts)"

crashed=0
summary=()
for target in "${targets[@]}"; do
    corpus="$work/$target/corpus"
    artifacts="$work/$target/artifacts"
    log="$work/$target/fuzz.log"
    mkdir -p "$corpus" "$artifacts"
    cp "$here/corpus/$target/"* "$corpus/"

    echo "== $target: $runs inputs, timeout ${timeout}s, max_len $max_len (log: $log)"
    started=$(date +%s)
    rc=0
    nice -n 10 "$bin/$target" \
        -runs="$runs" -timeout="$timeout" -rss_limit_mb=2048 -max_len="$max_len" -seed="$seed" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
    elapsed=$(( $(date +%s) - started ))

    executed="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    coverage="$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1 || true)"
    artifact="$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | head -1)"

    if [[ $rc -eq 0 ]]; then
        line="$target: inputs executed ${executed:-?}, ${coverage:-cov ?}, ${elapsed}s, crashes 0"
    else
        crashed=1
        kept=""
        if [[ -n "$artifact" ]]; then
            mkdir -p "$here/crashes/$target"
            kept="$here/crashes/$target/$(basename "$artifact")"
            cp "$artifact" "$kept"
            if [[ "${FUZZ_MINIMIZE:-0}" == 1 ]]; then
                timeout 120 nice -n 10 "$bin/$target" -minimize_crash=1 -runs=20000 -timeout="$timeout" \
                    -rss_limit_mb=2048 -exact_artifact_path="$kept.min" "$artifact" \
                    >"$work/$target/minimize.log" 2>&1 || true
            fi
        fi
        line="$target: inputs executed ${executed:-?}, ${coverage:-cov ?}, ${elapsed}s, crashes 1 (exit $rc), artifact ${artifact:-none}, kept as ${kept:-nothing}"
        grep -E 'ERROR|Fatal error|SUMMARY|^ *#[0-9]+ 0x' "$log" | grep -v llvm-project | head -12 \
            | sed 's/^/    /' || true
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $crashed
