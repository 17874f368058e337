"""Builds a corpus of qrlp codes (PNG and SVG, many payload kinds and options) and decodes
every image with zbarimg and zxing-cpp. With --mixed, also encodes a sample of mixed-script
text (lines `mixture<TAB>ecc<TAB>text`, from qrlp-mixed-sample) and counts per mixture what
each decoder read back exactly. Prints the counts; exits 1 on any mismatch."""
import argparse, os, random, shutil, subprocess, sys
import PIL.Image
import zxingcpp

def payloads(rng, n):
    kinds = []
    wide = "éüñß€✓😀اשกक—"
    kanji = "点茗日本語のテキスト漢字"
    for i in range(n):
        k = i % 8
        if k == 0:
            p = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 400)))
        elif k == 1:
            p = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:") for _ in range(rng.randint(1, 300)))
        elif k == 2:
            p = f"https://example.com/item/{rng.randint(0, 10**9)}?ref=qr&n={i}"
        elif k == 3:
            p = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(1, 250)))
        elif k == 4:
            p = "".join(rng.choice(wide) if rng.random() < 0.4 else rng.choice("abc 123") for _ in range(rng.randint(1, 120)))
        elif k == 5:
            p = "".join(rng.choice(kanji) for _ in range(rng.randint(1, 60)))
        elif k == 6:
            p = "ORDER " + "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 40))) + " ok " + rng.choice(kanji)
        else:
            p = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(800, 1500)))
        kinds.append(p.strip() or "x")
    return kinds

def zbar(path):
    r = subprocess.run(["zbarimg", "-q", "--raw", path], capture_output=True)
    return r.stdout.decode("utf-8", "replace").rstrip("\n") if r.returncode == 0 else None

def zxing(path, micro=False):
    img = PIL.Image.open(path)
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        bg = PIL.Image.new("RGBA", img.size, "white")
        img = PIL.Image.alpha_composite(bg, img.convert("RGBA")).convert("L")
    found = zxingcpp.read_barcodes(img)
    want = "MicroQRCode" if micro else "QRCode"
    texts = [r.text for r in found if r.format.name == want]
    return texts[0] if len(texts) == 1 else None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qrlp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--mixed", help="mixed-script sample: mixture<TAB>ecc<TAB>text lines")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    rng = random.Random(2026)
    texts = payloads(rng, args.count)
    items = []  # (path, expected, is_svg, micro)
    lines = os.path.join(args.out, "payloads.txt")
    with open(lines, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    digits = len(str(len(texts)))
    for fmt in ("png", "svg"):
        d = os.path.join(args.out, fmt)
        subprocess.run([args.qrlp, "batch", lines, "-o", d, "--format", fmt, "--quiet", "--box-size", "4"], check=True)
        for i, t in enumerate(texts):
            items.append((os.path.join(d, f"{i + 1:0{digits}}.{fmt}"), t, fmt == "svg", False))
    # Option variations through `qrlp encode`.
    variants = []
    for ecc in "LMQH":
        for size in (100, 300, 2000):
            variants.append(["--ecc", ecc, "--size", str(size)])
    for fg, bg in [("#1a1a2e", "#eaeaea"), ("#003", "#ffffe0"), ("#000000", "#ffffff00"), ("#0a0a0aff", "#f0f")]:
        variants.append(["--fg", fg, "--bg", bg])
    for border in ("0", "1", "10"):
        variants.append(["--border", border, "--box-size", "3"])
    variants.append(["--dpi", "300"])
    variants.append(["--mask", "5", "--version", "8-40"])
    variants.append(["--boost-ecc"])
    for n, opts in enumerate(variants):
        t = texts[n % len(texts)][:300]
        for fmt in ("png", "svg"):
            path = os.path.join(args.out, f"variant-{n}.{fmt}")
            subprocess.run([args.qrlp, "encode", t, "-o", path, *opts], check=True)
            items.append((path, t, fmt == "svg", False))
    for n, t in enumerate(["1", "12345678", "HELLO M3", "micro qr!", "A1B2C3D4E5", "0123456789012345678901234567890123"]):
        path = os.path.join(args.out, f"micro-{n}.png")
        subprocess.run([args.qrlp, "encode", t, "--micro", "--ecc", "L", "-o", path], check=True)
        items.append((path, t, False, True))

    counts = {"png": [0, 0, 0], "svg": [0, 0, 0], "micro": [0, 0, 0]}  # total, zbar ok, zxing ok
    failures = []
    for path, expected, is_svg, micro in items:
        key = "micro" if micro else ("svg" if is_svg else "png")
        raster = path
        if is_svg:
            raster = path[:-4] + ".svg.png"
            # Rasterise at 3x: an SVG asked for at 100 px holds modules of ~1 px.
            subprocess.run(["rsvg-convert", "-z", "3", "-b", "white", "-o", raster, path], check=True)
        counts[key][0] += 1
        z = None if micro else zbar(raster)
        x = zxing(raster, micro)
        if micro:
            counts[key][1] = None
        elif z == expected:
            counts[key][1] += 1
        else:
            failures.append(("zbarimg", path, expected[:60], (z or "")[:60]))
        if x == expected:
            counts[key][2] += 1
        else:
            failures.append(("zxing-cpp", path, expected[:60], (x or "")[:60]))
    print(f"{'kind':6} {'images':>7} {'zbarimg':>8} {'zxing-cpp':>10}")
    for k, (n, zb, zx) in counts.items():
        print(f"{k:6} {n:>7} {('n/a' if zb is None else zb):>8} {zx:>10}")
    for f in failures[:20]:
        print("FAIL", *f)
    if args.mixed:
        failures += mixed(args)
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)

def mixed(args):
    """Encodes the mixed-script sample with `qrlp batch` (one run per level, PNG, 4 px per
    module) and decodes each image with both decoders; prints counts per mixture."""
    with open(args.mixed, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 2) for line in f if line.strip()]
    d = os.path.join(args.out, "mixed")
    os.makedirs(d)
    items = []  # (mixture, ecc, text, path)
    for ecc in "LMQH":
        texts = [(m, t) for m, e, t in rows if e == ecc]
        if not texts:
            continue
        src = os.path.join(d, f"{ecc}.txt")
        with open(src, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for _, t in texts))
        sub = os.path.join(d, ecc)
        subprocess.run([args.qrlp, "batch", src, "-o", sub, "--ecc", ecc, "--quiet", "--box-size", "4"], check=True)
        digits = len(str(len(texts)))
        for i, (m, t) in enumerate(texts):
            items.append((m, ecc, t, os.path.join(sub, f"{i + 1:0{digits}}.png")))
    counts = {}  # mixture -> [total, zbar ok, zxing ok, longest]
    failures = []
    for m, ecc, t, path in items:
        c = counts.setdefault(m, [0, 0, 0, 0])
        c[0] += 1
        c[3] = max(c[3], len(t))
        for name, got, slot in (("zbarimg", zbar(path), 1), ("zxing-cpp", zxing(path), 2)):
            if got == t:
                c[slot] += 1
            else:
                failures.append((name, path, ecc, t[:40], (got or "")[:40]))
    print()
    print(f"mixed-script sample: {len(items)} texts, all four levels ({args.mixed})")
    print(f"{'mixture':22} {'texts':>6} {'zbarimg':>8} {'zxing-cpp':>10} {'longest':>8}")
    for m, (n, zb, zx, longest) in counts.items():
        print(f"{m:22} {n:>6} {zb:>8} {zx:>10} {longest:>8}")
    n = len(items)
    zb = sum(c[1] for c in counts.values())
    zx = sum(c[2] for c in counts.values())
    print(f"{'total':22} {n:>6} {zb:>8} {zx:>10}")
    for f in failures[:20]:
        print("FAIL", *f)
    return failures

main()
