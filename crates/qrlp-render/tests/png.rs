//! PNG output of real symbols: every pixel against `QrCode::is_dark`, and a full round trip
//! through a QR decoder.

use std::io::Cursor;

use qrlp_qr::{EcLevel, QrCode};
use qrlp_render::{layout, render_png, render_png_into, Color, RenderOptions};

/// A decoded PNG: dimensions, format and raw 1-bit rows.
struct Image {
    side: u32,
    color_type: png::ColorType,
    bit_depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
    rows: Vec<Vec<u8>>,
}

impl Image {
    fn decode(data: &[u8]) -> Image {
        let mut options = png::DecodeOptions::default();
        options.set_ignore_adler32(false);
        options.set_ignore_crc(false);
        let mut reader = png::Decoder::new_with_options(Cursor::new(data), options)
            .read_info()
            .expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).expect("png data");
        reader.finish().expect("png end");
        let info = reader.info();
        assert_eq!(info.width, info.height);
        Image {
            side: info.width,
            color_type: info.color_type,
            bit_depth: info.bit_depth,
            palette: info.palette.as_ref().map(|p| p.to_vec()),
            trns: info.trns.as_ref().map(|t| t.to_vec()),
            rows: buf
                .chunks(frame.line_size)
                .take(frame.height as usize)
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }

    /// Whether pixel (x, y) has the foreground colour.
    fn is_fg(&self, x: u32, y: u32) -> bool {
        let bit = (self.rows[y as usize][(x / 8) as usize] >> (7 - x % 8)) & 1 == 1;
        match self.color_type {
            png::ColorType::Grayscale => !bit,
            _ => bit,
        }
    }
}

/// Decodes `data` and checks format and every pixel against the symbol.
fn check(code: &QrCode, opts: &RenderOptions, data: &[u8]) -> Image {
    let l = layout(code, opts).unwrap();
    let img = Image::decode(data);
    assert_eq!(img.side, l.image_px);
    if let Some(size) = opts.size {
        assert_eq!(img.side, size);
    }
    assert_eq!(img.bit_depth, png::BitDepth::One);
    let (f, b) = (opts.fg, opts.bg);
    if f == Color::BLACK && b == Color::WHITE {
        assert_eq!(img.color_type, png::ColorType::Grayscale);
    } else {
        assert_eq!(img.color_type, png::ColorType::Indexed);
        assert_eq!(
            img.palette.as_deref(),
            Some(&[b.r, b.g, b.b, f.r, f.g, f.b][..])
        );
        let expect_trns = (!f.is_opaque() || !b.is_opaque()).then(|| vec![b.a, f.a]);
        assert_eq!(img.trns, expect_trns);
    }
    let m = l.module_px;
    let end = l.offset_px + code.width() as u32 * m;
    let module = |p: u32| {
        (l.offset_px..end)
            .contains(&p)
            .then(|| ((p - l.offset_px) / m) as usize)
    };
    for y in 0..l.image_px {
        for x in 0..l.image_px {
            let expected = match (module(x), module(y)) {
                (Some(mx), Some(my)) => code.is_dark(mx, my),
                _ => false,
            };
            assert_eq!(img.is_fg(x, y), expected, "pixel ({x}, {y}), {l:?}");
        }
    }
    img
}

/// One symbol of every version 1..=40, from byte payloads of growing length.
fn all_versions() -> Vec<(String, QrCode)> {
    let mut found: Vec<Option<(String, QrCode)>> = (0..41).map(|_| None).collect();
    let mut n = 1usize;
    while n <= 2953 {
        let text: String = (0..n)
            .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
            .collect();
        let code = QrCode::encode_text(&text, EcLevel::L).expect("fits");
        let v = (code.width() - 17) / 4;
        found[v].get_or_insert((text, code));
        n += (n / 40).max(4);
    }
    let all: Vec<(String, QrCode)> = found
        .into_iter()
        .skip(1)
        .map(|c| c.expect("every version"))
        .collect();
    assert_eq!(all.len(), 40);
    all
}

#[test]
fn every_pixel_for_all_symbol_widths() {
    for (i, (_, code)) in all_versions().iter().enumerate() {
        assert_eq!(code.width(), 21 + 4 * i);
        let module_size = [1, 2, 3, 7, 8][i % 5];
        let border = [0, 1, 4, 10][i % 4];
        let opts = RenderOptions {
            module_size,
            border,
            ..RenderOptions::default()
        };
        check(code, &opts, &render_png(code, &opts).unwrap());
    }
}

#[test]
fn every_pixel_for_module_sizes_borders_and_exact_sizes() {
    let code = QrCode::encode_text("https://example.com/product/12345?ref=qr", EcLevel::M).unwrap();
    assert_eq!(code.width(), 29);
    for module_size in [1, 2, 3, 7, 8, 10, 33] {
        for border in [0, 1, 4, 10] {
            let opts = RenderOptions {
                module_size,
                border,
                ..RenderOptions::default()
            };
            check(&code, &opts, &render_png(&code, &opts).unwrap());
        }
    }
    for size in [37, 100, 101, 257, 300, 2000, 4000] {
        let opts = RenderOptions {
            size: Some(size),
            ..RenderOptions::default()
        };
        check(&code, &opts, &render_png(&code, &opts).unwrap());
    }
}

#[test]
fn palette_colours_with_and_without_transparency() {
    let code = QrCode::encode_text("colour test", EcLevel::Q).unwrap();
    for (fg, bg) in [
        ("#1e3a8a", "#ffffff"),
        ("#fff", "#000"),
        ("#000000", "#00000000"),
        ("#c0392b80", "#fdf6e3"),
        ("#000000fe", "#ffffff"),
    ] {
        let opts = RenderOptions {
            fg: fg.parse().unwrap(),
            bg: bg.parse().unwrap(),
            module_size: 3,
            dpi: Some(96),
            ..RenderOptions::default()
        };
        check(&code, &opts, &render_png(&code, &opts).unwrap());
    }
}

/// Decodes the PNG back to text with rqrr, from the image's pixels only.
fn read_qr(data: &[u8], opts: &RenderOptions) -> String {
    let img = Image::decode(data);
    let luma = |c: Color| {
        ((u32::from(c.r) * 299 + u32::from(c.g) * 587 + u32::from(c.b) * 114) / 1000) as u8
    };
    let (dark, light) = (luma(opts.fg), luma(opts.bg));
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        img.side as usize,
        img.side as usize,
        |x, y| {
            if img.is_fg(x as u32, y as u32) {
                dark
            } else {
                light
            }
        },
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one symbol found");
    grids[0].decode().expect("decodes").1
}

#[test]
fn round_trip_through_a_qr_decoder() {
    let texts = [
        "https://example.com/product/12345?ref=qr".to_string(),
        "HELLO WORLD".to_string(),
        "0123456789".repeat(8),
        "Grüße, 世界! ".repeat(5),
        "x".repeat(300),
    ];
    for (i, text) in texts.iter().enumerate() {
        let code = QrCode::encode_text(text, EcLevel::M).unwrap();
        let opts = RenderOptions {
            module_size: [4, 5, 3, 6, 4][i],
            fg: if i == 2 {
                "#1e3a8a".parse().unwrap()
            } else {
                Color::BLACK
            },
            ..RenderOptions::default()
        };
        let data = render_png(&code, &opts).unwrap();
        assert_eq!(&read_qr(&data, &opts), text);
        // An odd exact size: integer modules, leftover in the quiet zone.
        let exact = RenderOptions {
            size: Some(401),
            ..opts
        };
        let data = render_png(&code, &exact).unwrap();
        check(&code, &exact, &data);
        assert_eq!(&read_qr(&data, &exact), text);
    }
}

#[test]
fn into_appends_and_matches() {
    let code = QrCode::encode_text("buffer reuse", EcLevel::L).unwrap();
    let opts = RenderOptions::default();
    let one = render_png(&code, &opts).unwrap();
    let mut buf = vec![1, 2, 3];
    render_png_into(&code, &opts, &mut buf).unwrap();
    assert_eq!(&buf[..3], &[1, 2, 3]);
    assert_eq!(&buf[3..], &one[..]);
    // Deterministic.
    assert_eq!(render_png(&code, &opts).unwrap(), one);
}
