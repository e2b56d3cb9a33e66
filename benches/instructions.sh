#!/usr/bin/env bash
# Instructions per query, each way against raw sqlx, counted by callgrind
# inside the polls of the bench's query future only (`query`): what the
# way itself runs, not the runtime's parking and I/O driver, whose counts
# follow the machine's timing. Repeatable on a busy machine (within 0.2%),
# unlike times. SQLite's own work (on sqlx's worker thread, the same for
# every way) is not counted. PostgreSQL on 127.0.0.1:5432 for the
# postgres rows.
#
#   bash benches/instructions.sh [N]     # N queries per count (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
warm_up=100
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
binary=$(cargo bench -p dbroute --bench instructions --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instructions" and m.get("executable"):
        print(m["executable"])')
count() { # backend way
  DBROUTE_IR_BACKEND=$1 DBROUTE_IR_WAY=$2 DBROUTE_IR_N=$n DBROUTE_IR_WARM_UP=$warm_up \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect='instructions::query::{{closure}}' "$binary" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-9s %-16s %12s %10s\n' backend way instructions "over raw"
for backend in sqlite postgres; do
  raw=
  for way in raw handle routed routed-uncached typed handle-as routed-as; do
    # The warm-up's queries run in the same future: counted too.
    per=$(( $(count "$backend" "$way") / (n + warm_up) ))
    [ -z "$raw" ] && raw=$per
    printf '%-9s %-16s %12d %+10d\n' "$backend" "$way" "$per" "$((per - raw))"
  done
done
