"""Speed, memory and scale benchmarks: `python -m benchmarks` prints a table and writes JSON."""
