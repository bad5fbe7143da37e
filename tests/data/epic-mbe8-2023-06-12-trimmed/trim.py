"""Rebuild this folder from the full day: python trim.py /path/to/epic-mbe8-2023-06-12"""

import sys
from pathlib import Path

WINDOW = (b"09:55:00", b"10:30:00")  # tool clock (Europe/Berlin)
WHOLE = {"Shutters.txt", "Messages.txt", "Fitting.txt", "LICENSE"}

source, here = Path(sys.argv[1]), Path(__file__).parent
for path in sorted(source.iterdir()):
    data = path.read_bytes()
    if path.name in WHOLE:
        (here / path.name).write_bytes(data)
        continue
    header, rows = data.split(b"\r\n")[:3], data.split(b"\r\n")[3:]
    kept = [row for row in rows if WINDOW[0] <= row[11:19] < WINDOW[1]]
    (here / path.name).write_bytes(b"\r\n".join(header + kept) + b"\r\n")
