"""Writes one harness's section of bench/RESULTS.md, between its markers
(`<!-- NAME:begin -->` … `<!-- NAME:end -->`), replacing the section if present and appending
it otherwise. Used by bench/retention.sh, bench/flow.sh, bench/queue.sh, bench/tracing.sh, bench/connect.sh and bench/bulk.sh;
bench/report.py keeps the sections."""

import datetime
import os
import platform


def stamp():
    """When and where: `YYYY-MM-DD HH:MM UTC, <machine>`."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}, {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write(results, name, lines):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = "\n".join([begin, *lines, end])
    text = open(results).read() if os.path.exists(results) else "# Cairn benchmark results\n"
    if begin in text and end in text:
        text = text.split(begin, 1)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    open(results, "w").write(text)
    print(f"wrote the {name} block of {results}")
