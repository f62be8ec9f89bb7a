#!/bin/sh
# bench/chart.sh CSV PNG: per-run latency by tool, from the samples that
# bench/bench.py wrote (launch.c's LAUNCH_CSV: row,round,wall_ms,cpu_ms).
# Bars: median wall time, whiskers from the 10th to the 90th percentile;
# dots: median CPU time of the run's processes (airlockd's mean for exec).
set -eu
csv="$1"
png="$2"
dat=$(mktemp)
trap 'rm -f "$dat"' EXIT
python3 - "$csv" >"$dat" <<'PY'
import csv, statistics, sys
rows = {}
for r in csv.DictReader(open(sys.argv[1])):
    rows.setdefault(r["row"], []).append((float(r["wall_ms"]), float(r["cpu_ms"])))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]
base = None
for i, (name, s) in enumerate(rows.items()):
    wall = [w for w, _ in s]
    cpu = [c for _, c in s]
    med = statistics.median(wall)
    base = base or med
    label = f"{name.replace('_', ' ')}\\n{med / base:.2f}x"
    print(i, f'"{label}"', f"{med:.3f}", f"{pct(wall, 0.1):.3f}",
          f"{pct(wall, 0.9):.3f}", f"{statistics.median(cpu):.3f}")
PY
gnuplot <<GP
set terminal pngcairo size 900,540 font "sans,11"
set bmargin 4
set output "$png"
set title "Per-run latency of /bin/true by tool (interleaved rounds)"
set ylabel "milliseconds"
set yrange [0:*]
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set key top left
plot "$dat" using 1:3:xtic(2) with boxes lc rgb "#4a7ebb" title "median wall time", \
     "" using 1:3:4:5 with yerrorbars lc rgb "#222222" pt -1 title "10th-90th percentile", \
     "" using 1:6 with points pt 7 ps 1.3 lc rgb "#d9534f" title "median CPU time"
GP
