//! Micro QR round trip through zxing-cpp, a decoder that reads Micro QR (rqrr does not).
//! zxing-cpp comes from PyPI (`pip install zxing-cpp pillow`); `.ci/run` installs it. Where
//! Python or the module is missing, the test says so and checks nothing (under CI it fails).

use qrlp_conformance::{zxing, Rng};
use qrlp_qr::{EcLevel, Mask, MicroVersion, Options, QrCode, SymbolKind};
use qrlp_render::{render_png, RenderOptions};

#[test]
fn micro_symbols_decode_in_zxing_cpp() {
    if !zxing::ready("micro_symbols_decode_in_zxing_cpp") {
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
    let decoded = zxing::read("MicroQRCode", &paths, 1);
    let mut versions = std::collections::BTreeSet::new();
    for ((text, version, ecc), got) in expected.iter().zip(&decoded) {
        let bytes = got.as_ref().map(|d| d.bytes.as_slice());
        assert_eq!(bytes, Some(text.as_bytes()), "{version}-{ecc} {text:?}");
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
    if !zxing::ready("structured_append_symbols_decode_in_order_to_the_message") {
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
    for got in zxing::read("QRCode", &paths, 1) {
        joined.extend(got.expect("each part decodes").bytes);
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(String::from_utf8(joined).unwrap(), text);
}
