#!/usr/bin/env python3
"""Writes one run's output of bench/run.py (a file) into the README's performance section,
between `<!-- bench:begin -->` and `<!-- bench:end -->`: the tables come from a single run,
with its date and machine, and are never edited by hand.

    bash bench/run.sh | tee target/bench/run.txt && python3 bench/update_readme.py target/bench/run.txt
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def section(out, start, stop="\n\n"):
    i = out.index(start)
    return out[i:out.index(stop, i)]


def main():
    out = open(sys.argv[1], encoding="utf-8").read()
    machine = re.search(r"^machine: (.*)$", out, re.M).group(1)
    server = re.search(r"^server: (.*)$", out, re.M).group(1)
    runs = re.search(r"^(\d+ calls per run, .*):$", out, re.M).group(1)
    block = f"""<!-- bench:begin (written by bench/update_readme.py from one run of bench/run.sh) -->
One run: {machine}. Server: {server}. {runs}.

Plain HTTP, calls/s (medians):

{section(out, "| threads |", chr(10) + chr(10))}

Over TLS (TLS 1.3, kept-alive), calls/s (medians):

{section(out[out.index("TLS (https):"):], "| threads |")}

![calls/s by thread count, pan-offline and libcurl, plain HTTP and TLS](bench/chart.svg)

Every run (calls/s):

```
{section(out, "every plain HTTP run")}
{section(out, "every TLS (https) run")}
{section(out, "every Python run")}
```

{section(out, "| 1 thread, plain HTTP")}

{section(out, "| 1 thread, plain HTTP, nginx's worker")}

{section(out, "| measure |")}

{section(out, "from Python")}

{section(out, "| connection |")}
<!-- bench:end -->"""
    path = os.path.join(ROOT, "README.md")
    readme = open(path, encoding="utf-8").read()
    new = re.sub(r"<!-- bench:begin.*?<!-- bench:end -->", lambda _: block, readme, flags=re.S)
    if new == readme and "<!-- bench:begin" not in readme:
        raise SystemExit("README.md has no bench markers")
    open(path, "w", encoding="utf-8").write(new)


if __name__ == "__main__":
    main()
