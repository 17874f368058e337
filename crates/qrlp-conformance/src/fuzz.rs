//! Random-input driver for the encoder and renderers: arbitrary text, bytes, segments and
//! options, including out-of-range and hostile values. Every call must return (a value or
//! an error); a panic is a failure. Used by `cargo test` for a bounded run and by the
//! `qrlp-fuzz` binary (`scripts/fuzz.sh`) for long runs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use qrlp_qr::{
    structured_append, EcLevel, EciPolicy, Mask, MicroVersion, Mode, Options, QrCode, Segment,
    SymbolKind, Version,
};
use qrlp_render::{
    render_png, render_svg, render_terminal, Color, RenderOptions, SvgDimensions, SvgOptions,
    TerminalOptions,
};

use crate::Rng;

/// Counts of what a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Inputs tried.
    pub cases: u64,
    /// Symbols encoded.
    pub encoded: u64,
    /// Encoder errors (expected for bad inputs).
    pub rejected: u64,
    /// Images rendered.
    pub rendered: u64,
}

fn text(rng: &mut Rng) -> String {
    let len = match rng.below(10) {
        0 => rng.below(4000),
        1..=3 => rng.below(300),
        _ => rng.below(40),
    };
    match rng.below(4) {
        0 => (0..len)
            .map(|_| (b'0' + rng.below(10) as u8) as char)
            .collect(),
        1 => String::from_utf8_lossy(&(0..len).map(|_| rng.next_u64() as u8).collect::<Vec<_>>())
            .into_owned(),
        2 => (0..len)
            .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'))
            .collect(),
        _ => (0..len)
            .map(|_| *rng.pick(&['A', 'z', '0', ' ', '点', 'é', '😀', '\0', '\n', ':', '%']))
            .collect(),
    }
}

/// Two versions in 1..=n, usually in order (an empty range now and then).
fn ordered(rng: &mut Rng, n: usize) -> (u8, u8) {
    let a = 1 + rng.below(n) as u8;
    let b = 1 + rng.below(n) as u8;
    if rng.below(8) == 0 {
        (a, b)
    } else {
        (a.min(b), a.max(b))
    }
}

fn options(rng: &mut Rng) -> Options {
    let ecc = EcLevel::ALL[rng.below(4)];
    let symbol = if rng.below(5) == 0 {
        let (a, b) = ordered(rng, 4);
        SymbolKind::Micro {
            min: MicroVersion::new(a).unwrap(),
            max: MicroVersion::new(b).unwrap(),
        }
    } else {
        let (a, b) = ordered(rng, 40);
        SymbolKind::Qr {
            min: Version::new(a).unwrap(),
            max: Version::new(b).unwrap(),
        }
    };
    Options {
        ecc,
        symbol,
        boost_ecc: rng.below(2) == 0,
        mask: (rng.below(3) == 0).then(|| Mask::new(rng.below(8) as u8).unwrap()),
        mode: match rng.below(16) {
            0 => Some(Mode::Numeric),
            1 => Some(Mode::Alphanumeric),
            2 => Some(Mode::Byte),
            3 => Some(Mode::Kanji),
            4 => Some(Mode::Eci),
            _ => None,
        },
        eci: match rng.below(4) {
            0 => EciPolicy::Never,
            1 => EciPolicy::Always(rng.next_u64() as u32 % 2_000_000),
            _ => EciPolicy::Auto,
        },
    }
}

fn colour(rng: &mut Rng) -> Color {
    let v = rng.next_u64();
    Color {
        r: v as u8,
        g: (v >> 8) as u8,
        b: (v >> 16) as u8,
        a: if rng.below(2) == 0 {
            255
        } else {
            (v >> 24) as u8
        },
    }
}

fn dimension(rng: &mut Rng) -> u32 {
    match rng.below(6) {
        0 => rng.next_u64() as u32,
        1 => *rng.pick(&[0, 1, 2, 32767, 32768, u32::MAX]),
        _ => rng.below(24) as u32,
    }
}

/// One random case; returns what happened. Panics propagate to the caller.
fn one(rng: &mut Rng, tally: &mut Tally) {
    tally.cases += 1;
    let opts = options(rng);
    let input = text(rng);
    let result = match rng.below(6) {
        0 => QrCode::encode_bytes_with(input.as_bytes(), &opts),
        1 => {
            let segs: Vec<Segment> = (0..rng.below(4))
                .filter_map(|_| match rng.below(5) {
                    0 => Segment::numeric(&input).ok(),
                    1 => Segment::alphanumeric(&input).ok(),
                    2 => Some(Segment::bytes(input.as_bytes())),
                    3 => Segment::kanji(&input).ok(),
                    _ => Segment::eci(rng.next_u64() as u32 % 1_100_000).ok(),
                })
                .collect();
            QrCode::encode_segments(&segs, &opts)
        }
        2 => structured_append(&input, &opts).map(|v| {
            v.into_iter()
                .next_back()
                .unwrap_or_else(|| QrCode::encode_text("", EcLevel::L).unwrap())
        }),
        _ => QrCode::encode_text_with(&input, &opts),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // The message must render; an error is an answer, not a failure.
            let _ = e.to_string();
            tally.rejected += 1;
            return;
        }
    };
    tally.encoded += 1;
    assert_eq!(
        code.width(),
        code.version().width(),
        "width agrees with the version"
    );
    let ropts = RenderOptions {
        module_size: dimension(rng),
        border: dimension(rng),
        size: (rng.below(3) == 0).then(|| dimension(rng).min(5000)),
        fg: colour(rng),
        bg: colour(rng),
        dpi: (rng.below(4) == 0).then(|| rng.next_u64() as u32),
    };
    // Keep PNG work bounded: huge images are allowed to be refused, not required to be made.
    if let Ok(layout) = qrlp_render::layout(&code, &ropts) {
        if layout.image_px <= 3000 {
            if let Ok(png) = render_png(&code, &ropts) {
                assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
                tally.rendered += 1;
            }
        }
    }
    let sopts = SvgOptions {
        border: dimension(rng).min(1000),
        module_size: dimension(rng).min(1000),
        size: (rng.below(3) == 0).then(|| dimension(rng)),
        dimensions: if rng.below(2) == 0 {
            SvgDimensions::WidthHeight
        } else {
            SvgDimensions::ViewBoxOnly
        },
        fg: colour(rng),
        bg: colour(rng),
        title: (rng.below(3) == 0).then(|| text(rng)),
    };
    let svg = render_svg(&code, &sopts);
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    let term = render_terminal(
        &code,
        &TerminalOptions {
            border: (rng.below(2) == 0).then(|| dimension(rng).min(64)),
            invert: rng.below(2) == 0,
        },
    );
    assert!(!term.is_empty());
    tally.rendered += 2;
}

/// Runs cases from `seed` until `keep_going` says stop. Returns the tally, or the seed and
/// panic message of the first failing case (re-run it with that seed to reproduce).
pub fn run(seed: u64, mut keep_going: impl FnMut(&Tally) -> bool) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut case_seed = seed;
    while keep_going(&tally) {
        case_seed = case_seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut rng = Rng::new(case_seed);
        let mut t = tally;
        let outcome = catch_unwind(AssertUnwindSafe(|| one(&mut rng, &mut t)));
        match outcome {
            Ok(()) => tally = t,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Err(format!("case seed {case_seed:#x} panicked: {msg}"));
            }
        }
    }
    Ok(tally)
}
