"""Read back a QR code drawn with Unicode half blocks (common/qr.c) the way
a phone's camera would see it on a dark terminal: each character is two
modules, drawn light (the text colour) or dark (the background); the
picture is scaled up, framed by the background and decoded by zbarimg
(Debian package zbar-tools).

    text = qrtext.extract(output)      # the QR lines of a message
    qrtext.decode(text)                # -> the encoded string, or None
"""
import os
import shutil
import subprocess
import tempfile

FULL, UPPER, LOWER = "\u2588", "\u2580", "\u2584"
BLOCKS = {FULL: (1, 1), UPPER: (1, 0), LOWER: (0, 1), " ": (0, 0)}
ZBARIMG = shutil.which("zbarimg")


def extract(output):
    """The consecutive lines of output made only of half blocks (and
    spaces), with carriage returns dropped: the QR code as drawn."""
    lines, best = [], []
    for line in output.replace("\r", "").split("\n"):
        if line and all(ch in BLOCKS for ch in line) and any(ch != " " for ch in line):
            lines.append(line)
        else:
            if len(lines) > len(best):
                best = lines
            lines = []
    if len(lines) > len(best):
        best = lines
    return "\n".join(best)


def matrix(text):
    """Rows of 0/1 (1 = light) from the half-block text."""
    rows = []
    for line in text.split("\n"):
        if not line:
            continue
        top = [BLOCKS[ch][0] for ch in line]
        bottom = [BLOCKS[ch][1] for ch in line]
        rows += [top, bottom]
    width = max(len(r) for r in rows)
    return [r + [0] * (width - len(r)) for r in rows]


def pgm(rows, scale=6, frame=10):
    """A binary PGM of the matrix: light 255, dark 0, with a dark frame of
    frame modules (the terminal around the code)."""
    h, w = len(rows), len(rows[0])
    W, H = (w + 2 * frame) * scale, (h + 2 * frame) * scale
    out = bytearray()
    for y in range(H):
        my = y // scale - frame
        for x in range(W):
            mx = x // scale - frame
            light = 0 <= my < h and 0 <= mx < w and rows[my][mx]
            out.append(255 if light else 0)
    return b"P5\n%d %d\n255\n" % (W, H) + bytes(out)


def decode(text):
    """The string the QR code in text encodes (zbarimg), or None."""
    if ZBARIMG is None:
        raise RuntimeError("zbarimg is not installed (Debian package zbar-tools)")
    with tempfile.NamedTemporaryFile(suffix=".pgm", delete=False) as f:
        f.write(pgm(matrix(text)))
        path = f.name
    try:
        p = subprocess.run([ZBARIMG, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    if p.returncode != 0:
        return None
    return p.stdout.rstrip("\n")
