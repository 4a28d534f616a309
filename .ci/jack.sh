#!/usr/bin/env bash
# Start a JACK server with the dummy driver for the audio tests, and print the exports to use it.
#
#   eval "$(.ci/jack.sh start [RATE])"   # sets JACK_DEFAULT_SERVER and SAMUEL_JACK_PID
#   .venv/bin/python -m pytest tests
#   .ci/jack.sh stop                      # stops the server started above
#
# The dummy driver runs at real-time pace with no sound hardware. A unique server name avoids
# stale servers left in /dev/shm by an earlier run. Needs Debian `jackd2` (and `libportaudio2`
# for sounddevice); install with tweak_rt_limits=false since we run with --no-realtime.
set -euo pipefail

cmd="${1:-start}"
rate="${2:-44100}"

case "$cmd" in
start)
    command -v jackd >/dev/null || { echo "jackd not found: apt-get install jackd2" >&2; exit 1; }
    name="${JACK_DEFAULT_SERVER:-samuel$$}"
    log="${TMPDIR:-/tmp}/jackd-$name.log"
    setsid jackd -n "$name" --no-realtime -d dummy -r "$rate" -p 512 -C 2 -P 2 \
        >"$log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 100); do  # ready in ~0.4 s; give it 10 s on a loaded machine
        if jack_lsp -s "$name" >/dev/null 2>&1; then
            echo "export JACK_DEFAULT_SERVER=$name SAMUEL_JACK_PID=$pid"
            exit 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "jackd did not come up; its log ($log):" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
stop)
    [ -n "${SAMUEL_JACK_PID:-}" ] || { echo "SAMUEL_JACK_PID is not set" >&2; exit 1; }
    kill "$SAMUEL_JACK_PID" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start [RATE] | stop" >&2
    exit 2
    ;;
esac
