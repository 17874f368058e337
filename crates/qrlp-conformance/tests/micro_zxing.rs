//! Micro QR round trip through zxing-cpp, a decoder that reads Micro QR (rqrr does not).
//! zxing-cpp comes from PyPI (`pip install zxing-cpp pillow`); `.ci/run` installs it. Where
//! Python or the module is missing, the test says so and checks nothing.

use std::process::Command;

use qrlp_conformance::Rng;
use qrlp_qr::{EcLevel, Mask, MicroVersion, Options, QrCode, SymbolKind};
use qrlp_render::{render_png, RenderOptions};

/// Prints, per image, the hex bytes of the one symbol of the format named in argv[1], or NONE.
const READER: &str = r#"
import sys, zxingcpp, PIL.Image as I
for path in sys.argv[2:]:
    found = [r for r in zxingcpp.read_barcodes(I.open(path)) if r.format.name == sys.argv[1]]
    print(found[0].bytes.hex() if len(found) == 1 else "NONE")
"#;

/// Decodes each image with zxing-cpp: one line per path, hex bytes or `NONE`.
fn zxing_read(format: &str, paths: &[std::path::PathBuf]) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(READER)
        .arg(format)
        .args(paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), paths.len());
    lines
}

fn zxing_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import zxingcpp, PIL"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn micro_symbols_decode_in_zxing_cpp() {
    if let Err(why) = zxing_available() {
        eprintln!("SKIPPED micro_symbols_decode_in_zxing_cpp: zxing-cpp unavailable ({why})");
        return;
    }
    let dir = std::env::temp_dir().join(format!("qrlp-micro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(0x4D1C_2026);
    let mut expected = Vec::new();
    let mut paths = Vec::new();
    let pools: [&[u8]; 3] = [
        b"0123456789",
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
        b"abcdefghijklmnopqrstuvwxyz0123456789!?",
    ];
    let levels = [EcLevel::L, EcLevel::M, EcLevel::Q];
    for i in 0..240 {
        let ecc = levels[i % 3];
        let pool = pools[rng.below(3)];
        let len = 1 + rng.below(if ecc == EcLevel::Q { 9 } else { 20 });
        let text: String = (0..len).map(|_| *rng.pick(pool) as char).collect();
        let mut opts = Options::micro(ecc);
        if i % 4 == 0 {
            opts.mask = Mask::new(rng.below(4) as u8);
        }
        if i % 7 == 0 {
            opts.symbol = SymbolKind::Micro {
                min: MicroVersion::new(3).unwrap(),
                max: MicroVersion::new(4).unwrap(),
            };
        }
        let Ok(code) = QrCode::encode_text_with(&text, &opts) else {
            continue;
        };
        let png = render_png(
            &code,
            &RenderOptions {
                module_size: 6,
                border: 2,
                ..RenderOptions::default()
            },
        )
        .unwrap();
        let path = dir.join(format!("{i}.png"));
        std::fs::write(&path, png).unwrap();
        paths.push(path);
        expected.push((text, code.version().to_string(), code.ec_level()));
    }
    let lines = zxing_read("MicroQRCode", &paths);
    let mut versions = std::collections::BTreeSet::new();
    for ((text, version, ecc), line) in expected.iter().zip(&lines) {
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(line, &hex, "{version}-{ecc} {text:?}");
        versions.insert(version.clone());
    }
    std::fs::remove_dir_all(&dir).ok();
    eprintln!(
        "{} Micro QR symbols decoded by zxing-cpp, versions {versions:?}",
        expected.len()
    );
    assert_eq!(versions.len(), 4, "M1-M4 all exercised");
}

#[test]
fn structured_append_symbols_decode_in_order_to_the_message() {
    // zxing-cpp's Python binding does not expose the sequence fields, but each symbol only
    // decodes if its structured-append header (mode 0011, position, total, parity) parses;
    // the header bits themselves are unit-tested in qrlp-qr.
    if let Err(why) = zxing_available() {
        eprintln!("SKIPPED structured_append_symbols_decode_in_order_to_the_message: zxing-cpp unavailable ({why})");
        return;
    }
    let dir = std::env::temp_dir().join(format!("qrlp-sa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text: String = (0..900).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let v = qrlp_qr::Version::new(6).unwrap();
    let opts = Options {
        ecc: EcLevel::M,
        symbol: SymbolKind::Qr {
            min: qrlp_qr::Version::MIN,
            max: v,
        },
        ..Options::default()
    };
    let parts = qrlp_qr::structured_append(&text, &opts).unwrap();
    assert!(parts.len() > 1 && parts.len() <= 16);
    let paths: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let path = dir.join(format!("part-{i}.png"));
            let png = render_png(
                code,
                &RenderOptions {
                    module_size: 4,
                    ..RenderOptions::default()
                },
            )
            .unwrap();
            std::fs::write(&path, png).unwrap();
            path
        })
        .collect();
    let mut joined = Vec::new();
    for hex in zxing_read("QRCode", &paths) {
        assert_ne!(hex, "NONE");
        joined.extend(
            (0..hex.len() / 2).map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap()),
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(String::from_utf8(joined).unwrap(), text);
}
