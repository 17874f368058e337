//! SVG and terminal output of real symbols.

use qrlp_qr::{EcLevel, QrCode};
use qrlp_render::{
    render_svg, render_svg_into, render_terminal, SvgDimensions, SvgOptions, TerminalOptions,
};

/// The `d` attribute of the one `<path>`.
fn path_data(svg: &str) -> &str {
    assert_eq!(svg.matches("<path ").count(), 1);
    let start = svg.find(" d=\"").unwrap() + 4;
    let end = svg[start..].find('"').unwrap() + start;
    &svg[start..end]
}

/// Parses `M{x} {y}h{n}v1h-{n}z` runs back into a grid of `total` × `total` modules.
fn modules_of(d: &str, total: usize) -> Vec<Vec<bool>> {
    let mut grid = vec![vec![false; total]; total];
    for sub in d.split('z').filter(|s| !s.is_empty()) {
        let rest = sub.strip_prefix('M').expect("M");
        let (x, rest) = rest.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (n, rest) = rest.split_once("v1h-").unwrap();
        assert_eq!(n, rest);
        let (x, y, n): (usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), n.parse().unwrap());
        for cell in &mut grid[y][x..x + n] {
            assert!(!*cell, "overlap");
            *cell = true;
        }
    }
    grid
}

#[test]
fn svg_path_is_exactly_the_dark_modules_and_decodes() {
    for (text, ecc) in [
        ("https://example.com/product/12345?ref=qr", EcLevel::M),
        ("HELLO WORLD", EcLevel::Q),
        (&"z".repeat(1500)[..], EcLevel::L),
    ] {
        let code = QrCode::encode_text(text, ecc).unwrap();
        for border in [0u32, 4] {
            let opts = SvgOptions {
                border,
                ..SvgOptions::default()
            };
            let svg = render_svg(&code, &opts);
            let total = code.width() + 2 * border as usize;
            assert!(svg.contains(&format!("viewBox=\"0 0 {total} {total}\"")));
            let grid = modules_of(path_data(&svg), total);
            let b = border as usize;
            assert_eq!(grid.len(), total);
            for (y, row) in grid.iter().enumerate() {
                for (x, &cell) in row.iter().enumerate() {
                    let dark = x >= b && y >= b && code.is_dark(x - b, y - b);
                    assert_eq!(cell, dark, "({x}, {y})");
                }
            }
            // Rasterise the path (4 px per module) and read the symbol back.
            if border == 4 {
                let px = 4;
                let side = total * px;
                let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
                    if grid[y / px][x / px] {
                        0
                    } else {
                        255
                    }
                });
                let grids = img.detect_grids();
                assert_eq!(grids.len(), 1);
                assert_eq!(grids[0].decode().unwrap().1, text);
            }
        }
    }
}

#[test]
fn svg_view_box_only_and_into() {
    let code = QrCode::encode_text("scale me", EcLevel::M).unwrap();
    let opts = SvgOptions {
        dimensions: SvgDimensions::ViewBoxOnly,
        title: Some("Tom & Jerry <3".into()),
        ..SvgOptions::default()
    };
    let svg = render_svg(&code, &opts);
    let root = &svg[..svg.find('>').unwrap()];
    assert!(!root.contains("width=") && !root.contains("height="));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox="));
    assert!(svg.contains("<title>Tom &amp; Jerry &lt;3</title>"));
    let mut s = String::from("x");
    render_svg_into(&code, &opts, &mut s);
    assert_eq!(&s[1..], svg);
}

#[test]
fn terminal_matches_modules() {
    let code = QrCode::encode_text("terminal", EcLevel::L).unwrap();
    for (border, invert) in [(None, false), (Some(1), true), (Some(0), false)] {
        let text = render_terminal(&code, &TerminalOptions { border, invert });
        let b = border.unwrap_or(4) as usize;
        let total = code.width() + 2 * b;
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        assert_eq!(lines.len(), total.div_ceil(2));
        for y in 0..total {
            assert_eq!(lines[y / 2].len(), total);
            for (x, &c) in lines[y / 2].iter().enumerate() {
                let drawn = match c {
                    '█' => true,
                    '▀' => y % 2 == 0,
                    '▄' => y % 2 == 1,
                    ' ' => false,
                    other => panic!("unexpected {other:?}"),
                };
                let dark = x >= b && y >= b && code.is_dark(x - b, y - b);
                assert_eq!(drawn, dark != invert, "({x}, {y})");
            }
        }
    }
    // The top line with a 1-module border: quiet zone over the finder patterns' top edges.
    let text = render_terminal(
        &code,
        &TerminalOptions {
            border: Some(1),
            invert: false,
        },
    );
    let first = text.lines().next().unwrap();
    let w = code.width();
    let expected: String = std::iter::once(' ')
        .chain((0..w).map(|x| if code.is_dark(x, 0) { '▄' } else { ' ' }))
        .chain(std::iter::once(' '))
        .collect();
    assert_eq!(first, expected);
    assert!(first.starts_with(" ▄▄▄▄▄▄▄ "));
    assert!(first.ends_with(" ▄▄▄▄▄▄▄ "));
}
