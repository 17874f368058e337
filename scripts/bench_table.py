"""Reads criterion's estimates for workloads A-D and prints medians and ratios."""
import json, os, sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
groups = [("A_matrix", "A: matrix"), ("B_png", "B: + PNG"), ("C_svg", "C: + SVG"), ("D_matrix_1000", "D: 1000-byte matrix")]
libs = ["qrlp", "fast_qr", "qrcode"]

def median_us(group, lib):
    path = os.path.join(root, group, lib, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] / 1000.0
    except OSError:
        return None

print("| workload | " + " | ".join(f"{l} (µs)" for l in libs) + " | fast_qr / qrlp | qrcode / qrlp |")
print("|---|" + "---|" * (len(libs) + 2))
for g, name in groups:
    m = {l: median_us(g, l) for l in libs}
    cells = [f"{m[l]:.2f}" if m[l] is not None else "-" for l in libs]
    ratio = lambda o: f"{m[o] / m['qrlp']:.1f}x" if m[o] and m["qrlp"] else "-"
    print(f"| {name} | " + " | ".join(cells) + f" | {ratio('fast_qr')} | {ratio('qrcode')} |")
