"""Transfer Lab benchmarks (not part of the test suite): `python bench/run.py --help`, docs/benchmarks.md.

harness   clocks, CPU time, A/B interleaving, median-and-spread summaries, machine info, results files
data      the shipped samples as training pools and untouched held-out sets (+ optional mnist_5k)
profiles  sizes per mode (quick / full)
sections  one module per section: probe, overhead, app (+ app_process), cold, memory, accuracy,
          threads, claims
targets   the targets and the table of them
console   the summary printed at the end of a run
run       the entry point; report writes docs/benchmarks.md and tl_ui/core/measured_figures.json
"""
