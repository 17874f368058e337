//! PNG tests on hand-made module patterns. Tests on real symbols are in `tests/png.rs`.

use super::*;
use crate::grid::test_grid::Grid;
use crate::grid::test_rng::Rng;

/// What the `png` crate reads back, plus our own parse of the chunk list.
pub(crate) struct Decoded {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) color_type: ::png::ColorType,
    pub(crate) bit_depth: ::png::BitDepth,
    pub(crate) palette: Option<Vec<u8>>,
    pub(crate) trns: Option<Vec<u8>>,
    pub(crate) dims: Option<::png::PixelDimensions>,
    pub(crate) chunks: Vec<[u8; 4]>,
    /// Unfiltered rows as stored (1 bit per pixel, MSB first).
    pub(crate) rows: Vec<Vec<u8>>,
}

impl Decoded {
    /// The stored bit of pixel (x, y).
    pub(crate) fn bit(&self, x: u32, y: u32) -> bool {
        let row = &self.rows[y as usize];
        (row[(x / 8) as usize] >> (7 - x % 8)) & 1 == 1
    }

    /// Whether pixel (x, y) shows the foreground (dark) colour.
    pub(crate) fn is_fg(&self, x: u32, y: u32) -> bool {
        match self.color_type {
            ::png::ColorType::Grayscale => !self.bit(x, y),
            _ => self.bit(x, y),
        }
    }
}

/// Walks the chunks checking lengths and CRCs, checks the zlib framing and Adler-32 of the
/// IDAT against the decoded data, and decodes with the `png` crate (Adler-32 check on).
pub(crate) fn decode(data: &[u8]) -> Decoded {
    assert_eq!(&data[..8], &SIGNATURE);
    let mut chunks = Vec::new();
    let mut idat = Vec::new();
    let mut at = 8;
    while at < data.len() {
        let len = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        let body = &data[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(data[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(
            crc,
            crc32fast::hash(&data[at + 4..at + 8 + len]),
            "CRC of {kind:?}"
        );
        if &kind == b"IDAT" {
            idat = body.to_vec();
        }
        chunks.push(kind);
        at += 12 + len;
    }
    assert_eq!(at, data.len(), "trailing bytes");
    assert_eq!(chunks.first(), Some(b"IHDR"));
    assert_eq!(chunks.last(), Some(b"IEND"));
    assert_eq!(chunks.iter().filter(|c| *c == b"IDAT").count(), 1);
    // zlib header, then a fixed-Huffman block first (the only one for palette rasters;
    // symbols follow it with stored scanlines and more fixed-Huffman blocks of copies).
    assert_eq!(&idat[..2], &[0x78, 0x01]);
    assert_eq!((u16::from(idat[0]) << 8 | u16::from(idat[1])) % 31, 0);
    assert_eq!(idat[2] & 0b110, 0b010, "BTYPE=01");

    let mut options = ::png::DecodeOptions::default();
    options.set_ignore_adler32(false);
    options.set_ignore_crc(false);
    let mut reader = ::png::Decoder::new_with_options(std::io::Cursor::new(data), options)
        .read_info()
        .expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).expect("png frame");
    reader.finish().expect("png end");
    let info = reader.info();
    let rows: Vec<Vec<u8>> = buf
        .chunks(frame.line_size)
        .take(frame.height as usize)
        .map(<[u8]>::to_vec)
        .collect();

    // Our own Adler-32 of the filtered data (filter byte 0 + row), byte by byte.
    let (mut a, mut b) = (1u32, 0u32);
    for row in &rows {
        for &x in std::iter::once(&0u8).chain(row) {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
    }
    let stored = u32::from_be_bytes(idat[idat.len() - 4..].try_into().unwrap());
    assert_eq!(stored, (b << 16) | a, "Adler-32");

    Decoded {
        width: info.width,
        height: info.height,
        color_type: info.color_type,
        bit_depth: info.bit_depth,
        palette: info.palette.as_ref().map(|p| p.to_vec()),
        trns: info.trns.as_ref().map(|p| p.to_vec()),
        dims: info.pixel_dims,
        chunks,
        rows,
    }
}

/// Checks size, format and every pixel against the modules.
pub(crate) fn check_image<M: Modules + ?Sized>(code: &M, opts: &RenderOptions, data: &[u8]) {
    let l = layout_of(code, opts).unwrap();
    let d = decode(data);
    assert_eq!((d.width, d.height), (l.image_px, l.image_px));
    assert_eq!(d.bit_depth, ::png::BitDepth::One);
    if opts.fg == Color::BLACK && opts.bg == Color::WHITE {
        assert_eq!(d.color_type, ::png::ColorType::Grayscale);
        assert!(d.palette.is_none() && d.trns.is_none());
    } else {
        assert_eq!(d.color_type, ::png::ColorType::Indexed);
        let (f, g) = (opts.fg, opts.bg);
        assert_eq!(
            d.palette.as_deref(),
            Some(&[g.r, g.g, g.b, f.r, f.g, f.b][..])
        );
        if f.is_opaque() && g.is_opaque() {
            assert!(d.trns.is_none());
        } else {
            assert_eq!(d.trns.as_deref(), Some(&[g.a, f.a][..]));
        }
    }
    if let Some(size) = opts.size {
        assert_eq!(l.image_px, size);
    }
    let m = l.module_px;
    let end = l.offset_px + code.width() as u32 * m;
    let module_of = |p: u32| {
        (l.offset_px..end)
            .contains(&p)
            .then(|| ((p - l.offset_px) / m) as usize)
    };
    for y in 0..l.image_px {
        let my = module_of(y);
        for x in 0..l.image_px {
            let expected = match (module_of(x), my) {
                (Some(mx), Some(my)) => code.is_dark(mx, my),
                _ => false,
            };
            assert_eq!(d.is_fg(x, y), expected, "pixel ({x}, {y}) of {l:?}");
        }
    }
}

fn render<M: Modules + ?Sized>(code: &M, opts: &RenderOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_png(code, opts, &mut out).unwrap();
    out
}

fn opts(module_size: u32, border: u32) -> RenderOptions {
    RenderOptions {
        module_size,
        border,
        ..RenderOptions::default()
    }
}

/// A finder-pattern-like test symbol: finders in three corners, random data elsewhere,
/// and some rows copied from their neighbours so that merged row groups are exercised.
fn symbol_like(width: usize, seed: u64) -> Grid {
    assert!(width >= 14);
    let mut g = Grid::random(width, seed);
    for (ox, oy) in [(0, 0), (width - 7, 0), (0, width - 7)] {
        for dy in 0..7 {
            for dx in 0..7 {
                let ring = dx.min(dy).min(6 - dx).min(6 - dy);
                g.set(ox + dx, oy + dy, ring != 1);
            }
        }
    }
    // Copy row 10 onto 11 and 12 (identical consecutive module rows).
    for x in 0..width {
        let d = g.is_dark(x, 10);
        g.set(x, 11, d);
        g.set(x, 12, d);
    }
    g
}

#[test]
fn every_pixel_for_module_sizes_and_borders() {
    for &width in &[21usize, 29, 45] {
        let g = symbol_like(width, width as u64);
        for &m in &[1u32, 2, 3, 7, 8, 10, 33] {
            for &border in &[0u32, 1, 4, 10] {
                let o = opts(m, border);
                check_image(&g, &o, &render(&g, &o));
            }
        }
    }
}

#[test]
fn every_pixel_for_exact_sizes() {
    for &width in &[21usize, 57, 177] {
        let g = symbol_like(width, 1000 + width as u64);
        for &size in &[100u32, 101, 257, 300, 2000] {
            for &border in &[0u32, 4] {
                let o = RenderOptions {
                    size: Some(size),
                    border,
                    ..RenderOptions::default()
                };
                if size < width as u32 + 2 * border {
                    assert!(matches!(
                        write_png(&g, &o, &mut Vec::new()),
                        Err(RenderError::SizeTooSmall { .. })
                    ));
                    continue;
                }
                check_image(&g, &o, &render(&g, &o));
            }
        }
    }
}

#[test]
fn long_scanlines_split_matches_correctly() {
    // 2000 px → 251-byte scanlines (a copy of one scanline fits in one match only if ≤ 258),
    // 4000 px → 501 bytes, 4001 px → 502 bytes with a 1-pixel last byte.
    let g = symbol_like(21, 5);
    for &size in &[2000u32, 2064, 2072, 4000, 4001] {
        let o = RenderOptions {
            size: Some(size),
            ..RenderOptions::default()
        };
        check_image(&g, &o, &render(&g, &o));
    }
    // Module sizes whose row copies total 258·k + 1, 258·k + 2 (the tail-splitting rule),
    // with scanline lengths around 258.
    for &m in &[86u32, 87, 88, 89] {
        let o = opts(m, 1);
        check_image(&g, &o, &render(&g, &o));
    }
}

#[test]
fn copy_lengths_never_leave_short_tails() {
    // A one-module symbol lets the image be any size; sweep scanline lengths and row counts
    // so that the copied byte counts hit every residue mod 258.
    let dark = Grid::from_fn(1, |_, _| true);
    for side in 1..=70u32 {
        let o = RenderOptions {
            size: Some(side),
            border: 0,
            ..RenderOptions::default()
        };
        check_image(&dark, &o, &render(&dark, &o));
    }
    for side in (2040..2080u32).step_by(3) {
        let o = RenderOptions {
            size: Some(side),
            border: 0,
            ..RenderOptions::default()
        };
        check_image(&dark, &o, &render(&dark, &o));
    }
}

#[test]
fn tiny_and_uniform_symbols() {
    let cases = [
        Grid::from_fn(1, |_, _| true),
        Grid::from_fn(1, |_, _| false),
        Grid::from_fn(3, |_, _| true),
        Grid::from_fn(9, |_, _| false),
        Grid::from_fn(9, |x, y| (x + y) % 2 == 0),
        Grid::from_fn(64, |x, _| x % 3 == 0),
        Grid::from_fn(65, |x, y| x == 64 || y == 64),
        Grid::from_fn(130, |x, y| (x / 5 + y / 7) % 2 == 0),
        Grid::parse(&["#.#", "...", "#.#"]),
    ];
    for g in &cases {
        for &(m, border) in &[(1u32, 0u32), (1, 1), (2, 0), (3, 2), (8, 0), (9, 1)] {
            let o = opts(m, border);
            check_image(g, &o, &render(g, &o));
        }
    }
}

#[test]
fn every_module_size_around_the_group_of_four_limit() {
    // Rows are set four modules at a time up to 16 px a module (a group straddling two
    // words), run by run above; widths across one and two row words, borders that put the
    // symbol at every alignment of a word.
    let mut rng = Rng::new(16);
    for &width in &[1usize, 5, 21, 63, 64, 65, 69, 129] {
        let g = Grid::random(width, rng.next());
        for m in 1..=17u32 {
            let border = rng.below(11) as u32;
            let o = opts(m, border);
            check_image(&g, &o, &render(&g, &o));
        }
    }
}

#[test]
fn random_symbols_of_many_widths() {
    let mut rng = Rng::new(2024);
    for width in (11..=177).step_by(4) {
        let g = Grid::random(width, rng.next());
        let o = RenderOptions {
            module_size: 1 + rng.below(4) as u32,
            border: rng.below(6) as u32,
            ..RenderOptions::default()
        };
        check_image(&g, &o, &render(&g, &o));
    }
}

#[test]
fn palette_colours_with_and_without_transparency() {
    let g = symbol_like(25, 77);
    let colours = [
        (Color::rgb(0x1e, 0x3a, 0x8a), Color::WHITE, false),
        (Color::WHITE, Color::BLACK, false),
        (Color::BLACK, Color::TRANSPARENT, true),
        (Color::rgba(200, 0, 0, 128), Color::rgb(255, 255, 0), true),
        (Color::rgba(0, 0, 0, 254), Color::WHITE, true),
        (Color::BLACK, Color::rgba(255, 255, 255, 0), true),
        (Color::rgb(9, 9, 9), Color::rgb(9, 9, 9), false),
    ];
    for (fg, bg, trns) in colours {
        for &m in &[1u32, 3, 10] {
            let o = RenderOptions {
                fg,
                bg,
                module_size: m,
                ..RenderOptions::default()
            };
            let png = render(&g, &o);
            check_image(&g, &o, &png);
            let d = decode(&png);
            assert_eq!(d.chunks.contains(b"tRNS"), trns);
            assert!(d.chunks.contains(b"PLTE"));
        }
    }
}

#[test]
fn chunk_order_and_dpi() {
    let g = symbol_like(21, 3);
    let o = RenderOptions {
        dpi: Some(300),
        fg: Color::rgba(0, 0, 0, 10),
        ..RenderOptions::default()
    };
    let png = render(&g, &o);
    check_image(&g, &o, &png);
    let d = decode(&png);
    assert_eq!(
        d.chunks,
        [*b"IHDR", *b"PLTE", *b"tRNS", *b"pHYs", *b"IDAT", *b"IEND"]
    );
    let dims = d.dims.unwrap();
    assert_eq!((dims.xppu, dims.yppu), (11811, 11811));
    assert_eq!(dims.unit, ::png::Unit::Meter);

    let d = decode(&render(&g, &RenderOptions::default()));
    assert_eq!(d.chunks, [*b"IHDR", *b"IDAT", *b"IEND"]);
    assert!(d.dims.is_none());

    for (dpi, ppm) in [(72, 2835), (96, 3780), (300, 11811), (600, 23622), (1, 39)] {
        assert_eq!(pixels_per_metre(dpi), ppm);
        assert_eq!(
            f64::from(pixels_per_metre(dpi)),
            (f64::from(dpi) / 0.0254).round()
        );
    }
    assert_eq!(
        pixels_per_metre(MAX_DPI) as f64,
        (f64::from(MAX_DPI) / 0.0254).round()
    );
    for dpi in [0, MAX_DPI + 1, u32::MAX] {
        let o = RenderOptions {
            dpi: Some(dpi),
            ..RenderOptions::default()
        };
        assert_eq!(
            write_png(&g, &o, &mut Vec::new()),
            Err(RenderError::InvalidDpi { dpi })
        );
    }
}

#[test]
fn appends_and_leaves_buffer_alone_on_error() {
    let g = symbol_like(21, 4);
    let mut buf = b"prefix".to_vec();
    write_png(&g, &RenderOptions::default(), &mut buf).unwrap();
    assert!(buf.starts_with(b"prefix\x89PNG"));
    check_image(&g, &RenderOptions::default(), &buf[6..]);
    let before = buf.clone();
    let bad = RenderOptions {
        module_size: 0,
        ..RenderOptions::default()
    };
    assert_eq!(
        write_png(&g, &bad, &mut buf),
        Err(RenderError::InvalidModuleSize)
    );
    assert_eq!(buf, before);
}

#[test]
fn output_is_small() {
    // Repeated rows cost a few bits: a 370 px version-3-sized image stays under 1.8 KB
    // although its raw data is 370 × 47 = 17 390 bytes. (Each distinct scanline is stored,
    // 8 bits a byte plus about 5 bytes a line, rather than Huffman-coded at 8 or 9 bits a
    // byte: about 15% larger than a fixed-Huffman stream with runs, and much faster.)
    let g = symbol_like(29, 8);
    let png = render(&g, &RenderOptions::default());
    assert!(png.len() < 1800, "{} bytes", png.len());
    // The largest image allowed: 32768 rows of 4097 bytes, nearly all copies at about 24 bits
    // per 258 bytes of a fixed-Huffman match, so about 1.6 MB.
    let o = RenderOptions {
        size: Some(MAX_IMAGE_SIDE),
        border: 0,
        ..RenderOptions::default()
    };
    let big = render(&g, &o);
    assert!(big.len() < 1_700_000, "{} bytes", big.len());
    let d = decode(&big);
    assert_eq!(d.width, MAX_IMAGE_SIDE);
}

use crate::layout::MAX_IMAGE_SIDE;
