//! Differential test: with the same segments, version and mask, the module matrix must be
//! bit-identical to Nayuki's qrcodegen, and the automatic mask must be the same choice.

use qrcodegen as reference;
use qrlp_conformance::Rng;
use qrlp_qr::{EcLevel, Mask, Options, QrCode, Segment, SymbolKind, Version};

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

fn ref_ecc(e: EcLevel) -> reference::QrCodeEcc {
    match e {
        EcLevel::L => reference::QrCodeEcc::Low,
        EcLevel::M => reference::QrCodeEcc::Medium,
        EcLevel::Q => reference::QrCodeEcc::Quartile,
        EcLevel::H => reference::QrCodeEcc::High,
    }
}

/// Random segments of every mode (and sometimes an ECI designator), as both encoders' types.
fn random_segments(rng: &mut Rng, max_chars: usize) -> (Vec<Segment>, Vec<reference::QrSegment>) {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    if rng.below(8) == 0 {
        let n = *rng.pick(&[3u32, 26, 127, 128, 16383, 16384, 999_999]);
        ours.push(Segment::eci(n).unwrap());
        theirs.push(reference::QrSegment::make_eci(n));
    }
    for _ in 0..1 + rng.below(4) {
        let len = rng.below(max_chars + 1);
        match rng.below(3) {
            0 => {
                let s: String = (0..len)
                    .map(|_| (b'0' + rng.below(10) as u8) as char)
                    .collect();
                ours.push(Segment::numeric(&s).unwrap());
                theirs.push(reference::QrSegment::make_numeric(&s));
            }
            1 => {
                let s: String = (0..len).map(|_| *rng.pick(ALNUM) as char).collect();
                ours.push(Segment::alphanumeric(&s).unwrap());
                theirs.push(reference::QrSegment::make_alphanumeric(&s));
            }
            _ => {
                let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                ours.push(Segment::bytes(&b));
                theirs.push(reference::QrSegment::make_bytes(&b));
            }
        }
    }
    (ours, theirs)
}

fn assert_same(ours: &QrCode, theirs: &reference::QrCode, what: &str) {
    assert_eq!(ours.width() as i32, theirs.size(), "{what}: width");
    for y in 0..ours.width() {
        for x in 0..ours.width() {
            assert_eq!(
                ours.is_dark(x, y),
                theirs.get_module(x as i32, y as i32),
                "{what}: module ({x},{y})"
            );
        }
    }
}

fn run(cases: usize, seed: u64, force_mask: bool) -> usize {
    let mut rng = Rng::new(seed);
    let mut compared = 0;
    for case in 0..cases {
        let ecc = EcLevel::ALL[case % 4];
        let version = 1 + rng.below(40) as u8;
        // Scale the data to the version so every version gets exercised near capacity too.
        let max_chars = (version as usize * version as usize * 3 / 4).clamp(4, 700);
        let (segs, ref_segs) = random_segments(&mut rng, max_chars);
        let mask = force_mask.then(|| rng.below(8) as u8);
        let v = Version::new(version).unwrap();
        let opts = Options {
            ecc,
            symbol: SymbolKind::Qr {
                min: v,
                max: Version::MAX,
            },
            mask: mask.map(|m| Mask::new(m).unwrap()),
            ..Options::default()
        };
        let theirs = reference::QrCode::encode_segments_advanced(
            &ref_segs,
            ref_ecc(ecc),
            reference::Version::new(version),
            reference::Version::new(40),
            mask.map(reference::Mask::new),
            false,
        );
        let ours = QrCode::encode_segments(&segs, &opts);
        match (ours, theirs) {
            (Ok(o), Ok(t)) => {
                let what = format!("case {case} v{version}+ {ecc} mask {mask:?}");
                assert_same(&o, &t, &what);
                assert_eq!(o.mask().number(), t.mask().value(), "{what}: mask");
                compared += 1;
            }
            (Err(_), Err(_)) => {}
            (o, t) => panic!(
                "case {case}: one encoder failed: ours {:?} theirs {:?}",
                o.err(),
                t.err()
            ),
        }
    }
    compared
}

#[test]
fn forced_mask_matrices_are_bit_identical() {
    let compared = run(2200, 0x5EED_0001, true);
    assert!(compared >= 2000, "only {compared} cases compared");
}

#[test]
fn automatic_mask_choice_matches() {
    let compared = run(1100, 0x5EED_0002, false);
    assert!(compared >= 1000, "only {compared} cases compared");
}
