//! Styled PNGs (live, professional, minimal; with and without a caption): decoded with the
//! `png` crate with checksums on, every module checked against the symbol, the frame and
//! the caption found where they belong, and the code read back by a decoder.

use std::io::Cursor;

use qrlp_qr::{EcLevel, QrCode};
use qrlp_render::{render_styled_png, Color, Style, StyledOptions, LIVE_ACCENT};

/// Decodes a PNG to RGBA pixels with strict checksums.
fn rgba(data: &[u8]) -> (usize, usize, Vec<[u8; 4]>) {
    let mut options = png::DecodeOptions::default();
    options.set_ignore_adler32(false);
    options.set_ignore_crc(false);
    let mut decoder = png::Decoder::new_with_options(Cursor::new(data), options);
    decoder.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("png data");
    reader.finish().expect("png end");
    let channels = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| match *c {
            [g] => [g, g, g, 255],
            [g, a] => [g, g, g, a],
            [r, g, b] => [r, g, b, 255],
            [r, g, b, a] => [r, g, b, a],
            _ => unreachable!("1 to 4 channels"),
        })
        .collect();
    (info.width as usize, info.height as usize, px)
}

fn rgba_of(c: Color) -> [u8; 4] {
    [c.r, c.g, c.b, c.a]
}

fn decode_with_rqrr(w: usize, h: usize, px: &[[u8; 4]]) -> String {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = px[y * w + x];
        ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one code in the image");
    grids[0].decode().expect("decodes").1
}

#[test]
fn every_style_with_and_without_caption() {
    let text = "QL2:9RGXZ7100D70J66SUS9US6H9.B0JR0UH0000:808*AQV6EN0A.4AU07005Z13P31F5";
    let code = QrCode::encode_text(text, EcLevel::M).unwrap();
    let caption = vec![
        "QRLP LIVE #1736609445123".to_owned(),
        "2025-01-11 15:30:45 UTC".to_owned(),
        "key 3097e2dee2cb4a34 ed25519 and a long tail that must wrap".to_owned(),
    ];
    for style in [Style::Live, Style::Professional, Style::Minimal] {
        for with_caption in [false, true] {
            let lines: &[String] = if with_caption { &caption } else { &[] };
            let opts = StyledOptions {
                module_size: 6,
                caption: lines,
                ..StyledOptions::new(style)
            };
            let png = render_styled_png(&code, &opts).unwrap();
            let (w, h, px) = rgba(&png);
            let m = 6;
            let q = style.quiet_zone() as usize;
            let frame = if style == Style::Live { 3 } else { 0 };
            let side = (code.width() + 2 * q) * m;
            assert_eq!(w, side + 2 * frame, "{style:?}");
            if with_caption {
                assert!(h > side + 2 * frame, "{style:?}: room for the caption");
            } else {
                assert_eq!(h, side + 2 * frame, "{style:?}");
            }
            // Every module, sampled at its centre.
            let origin = frame + q * m;
            for y in 0..code.width() {
                for x in 0..code.width() {
                    let p = px[(origin + y * m + m / 2) * w + origin + x * m + m / 2];
                    let want = if code.is_dark(x, y) {
                        Color::BLACK
                    } else {
                        Color::WHITE
                    };
                    assert_eq!(p, rgba_of(want), "{style:?} module ({x}, {y})");
                }
            }
            // The live frame is accent-coloured all round; the others have none.
            let corner = px[0];
            let bottom = px[(h - 1) * w + w / 2];
            if style == Style::Live {
                assert_eq!(corner, rgba_of(LIVE_ACCENT));
                assert_eq!(bottom, rgba_of(LIVE_ACCENT));
            } else {
                assert_eq!(corner, rgba_of(Color::WHITE));
            }
            // The caption draws something below the code, in the style's text colour.
            let text_colour = if style == Style::Live {
                LIVE_ACCENT
            } else {
                Color::BLACK
            };
            let inked = (frame + side..h - frame)
                .flat_map(|y| (frame..w - frame).map(move |x| (x, y)))
                .filter(|&(x, y)| px[y * w + x] == rgba_of(text_colour))
                .count();
            assert_eq!(inked > 0, with_caption, "{style:?} caption pixels {inked}");
            assert_eq!(decode_with_rqrr(w, h, &px), text, "{style:?}");
        }
    }
}

#[test]
fn colours_transparency_and_limits() {
    let code = QrCode::encode_text("hello", EcLevel::L).unwrap();
    let caption = ["#1".to_owned()];
    let opts = StyledOptions {
        fg: Color::rgba(0x1e, 0x3a, 0x8a, 0xff),
        bg: Color::rgba(0, 0, 0, 0),
        caption: &caption,
        ..StyledOptions::new(Style::Minimal)
    };
    let (_, _, px) = rgba(&render_styled_png(&code, &opts).unwrap());
    assert_eq!(px[0], [0, 0, 0, 0], "transparent background");
    assert!(px.contains(&[0x1e, 0x3a, 0x8a, 0xff]));
    let zero = StyledOptions {
        module_size: 0,
        ..StyledOptions::new(Style::Live)
    };
    assert!(render_styled_png(&code, &zero).is_err());
    let huge = StyledOptions {
        module_size: 2000,
        ..StyledOptions::new(Style::Live)
    };
    assert!(render_styled_png(&code, &huge).is_err());
}

/// A live frame as `qrlp live` sends it (a version-18 symbol at 10 pixels per module, the
/// accent frame): every pixel is exact, and the matches the writer finds keep it small.
#[test]
fn live_frame_every_pixel_and_size() {
    let text: String = (0..560)
        .map(|i| char::from(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$%*+-./:"[(i * 37 + i / 7) % 44]))
        .collect();
    let code = QrCode::encode_text(&text, EcLevel::M).unwrap();
    let m = 10;
    let opts = StyledOptions {
        module_size: m as u32,
        ..StyledOptions::new(Style::Live)
    };
    let png = render_styled_png(&code, &opts).unwrap();
    let (w, h, px) = rgba(&png);
    let q = Style::Live.quiet_zone() as usize;
    let frame = m / 2; // the live frame: half a module
    let side = (code.width() + 2 * q) * m;
    assert_eq!((w, h), (side + 2 * frame, side + 2 * frame));
    for y in 0..h {
        for x in 0..w {
            let inside = |v: usize| v >= frame && v < frame + side;
            let want = if !inside(x) || !inside(y) {
                LIVE_ACCENT
            } else {
                let (mx, my) = ((x - frame) / m, (y - frame) / m);
                let dark = mx >= q
                    && my >= q
                    && mx - q < code.width()
                    && my - q < code.width()
                    && code.is_dark(mx - q, my - q);
                if dark {
                    Color::BLACK
                } else {
                    Color::WHITE
                }
            };
            assert_eq!(px[y * w + x], rgba_of(want), "pixel ({x}, {y})");
        }
    }
    assert_eq!(decode_with_rqrr(w, h, &px), text);
    // Literals alone took about 15 KB for a frame of this size.
    assert!(png.len() < 8_000, "{} bytes for {w}x{h}", png.len());
}
