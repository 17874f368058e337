use super::*;
use crate::grid::test_grid::Grid;
use crate::grid::test_rng::Rng;

fn svg<M: Modules + ?Sized>(code: &M, opts: &SvgOptions) -> String {
    let mut s = String::new();
    write_svg(code, opts, &mut s);
    s
}

/// One element as the checker saw it.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').expect("unterminated entity") + i;
        out.push(match &rest[i + 1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e => panic!("unknown entity &{e};"),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn check_text(s: &str) {
    assert!(!s.contains('<'), "raw < in {s:?}");
    for c in s.chars() {
        assert!(
            !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'),
            "character not allowed in XML: {c:?}"
        );
    }
    unescape(s);
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '_')
}

/// A small well-formedness checker for the subset of XML the renderer writes: elements,
/// double-quoted attributes, character data and the five predefined entities. Returns the
/// elements in document order; panics on anything malformed.
fn parse_xml(doc: &str) -> Vec<Element> {
    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut roots = 0;
    let mut rest = doc;
    loop {
        let Some(lt) = rest.find('<') else {
            check_text(rest);
            assert!(
                rest.trim().is_empty() || !stack.is_empty(),
                "text after root"
            );
            break;
        };
        let text = &rest[..lt];
        check_text(text);
        if let Some((_, i)) = stack.last() {
            elements[*i].text.push_str(&unescape(text));
        } else {
            assert!(text.trim().is_empty(), "text outside the root: {text:?}");
        }
        let gt = rest[lt..].find('>').expect("unterminated tag") + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let (open, _) = stack.pop().expect("close without open");
            assert_eq!(open, name, "mismatched close tag");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs_src) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(is_name(name), "bad element name {name:?}");
        let mut attrs = Vec::new();
        loop {
            attrs_src = attrs_src.trim_start();
            if attrs_src.is_empty() {
                break;
            }
            let eq = attrs_src.find("=\"").expect("attribute without =\"");
            let attr = &attrs_src[..eq];
            assert!(is_name(attr), "bad attribute name {attr:?}");
            let after = &attrs_src[eq + 2..];
            let close = after.find('"').expect("unterminated attribute");
            let raw = &after[..close];
            check_text(raw);
            assert!(
                attrs.iter().all(|(n, _): &(String, String)| n != attr),
                "duplicate attribute {attr}"
            );
            attrs.push((attr.to_string(), unescape(raw)));
            attrs_src = &after[close + 1..];
            assert!(
                attrs_src.is_empty() || attrs_src.starts_with(' '),
                "attributes must be separated by spaces"
            );
        }
        if stack.is_empty() {
            roots += 1;
        }
        elements.push(Element {
            name: name.to_string(),
            attrs,
            text: String::new(),
        });
        if !self_closing {
            stack.push((name.to_string(), elements.len() - 1));
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
    elements
}

/// Parses the path data back into a module grid (in viewBox units), checking that the
/// subpaths have exactly the run shape and never overlap.
fn path_modules(d: &str, total: usize) -> Vec<Vec<bool>> {
    let mut grid = vec![vec![false; total]; total];
    let mut rest = d;
    let num = |s: &mut &str| -> usize {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let n = s[..end].parse().expect("number");
        *s = &s[end..];
        n
    };
    let lit = |s: &mut &str, p: &str| {
        assert!(
            s.starts_with(p),
            "expected {p:?} at {:?}",
            &s[..s.len().min(20)]
        );
        *s = &s[p.len()..];
    };
    while !rest.is_empty() {
        lit(&mut rest, "M");
        let x = num(&mut rest);
        lit(&mut rest, " ");
        let y = num(&mut rest);
        lit(&mut rest, "h");
        let len = num(&mut rest);
        lit(&mut rest, "v1h-");
        assert_eq!(num(&mut rest), len);
        lit(&mut rest, "z");
        assert!(len > 0);
        for cell in &mut grid[y][x..x + len] {
            assert!(!*cell, "overlapping runs");
            *cell = true;
        }
    }
    grid
}

/// Checks well-formedness, the root attributes and that the path is exactly the dark
/// modules. Returns the elements.
fn check_svg<M: Modules + ?Sized>(code: &M, opts: &SvgOptions, doc: &str) -> Vec<Element> {
    let els = parse_xml(doc);
    let root = &els[0];
    assert_eq!(root.name, "svg");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
    assert_eq!(root.attr("shape-rendering"), Some("crispEdges"));
    let total = code.width() + 2 * opts.border as usize;
    assert_eq!(
        root.attr("viewBox"),
        Some(format!("0 0 {total} {total}").as_str())
    );
    match opts.dimensions {
        SvgDimensions::WidthHeight => {
            let px = opts
                .size
                .map_or(total as u64 * u64::from(opts.module_size), u64::from)
                .to_string();
            assert_eq!(root.attr("width"), Some(px.as_str()));
            assert_eq!(root.attr("height"), Some(px.as_str()));
        }
        SvgDimensions::ViewBoxOnly => {
            assert_eq!(root.attr("width"), None);
            assert_eq!(root.attr("height"), None);
        }
    }
    let paths: Vec<&Element> = els.iter().filter(|e| e.name == "path").collect();
    let any_dark = (0..code.width()).any(|y| (0..code.width()).any(|x| code.is_dark(x, y)));
    assert_eq!(paths.len(), usize::from(any_dark));
    if let Some(path) = paths.first() {
        let grid = path_modules(path.attr("d").unwrap(), total);
        let b = opts.border as usize;
        for (y, row) in grid.iter().enumerate() {
            for (x, &cell) in row.iter().enumerate() {
                let expected = x >= b && y >= b && code.is_dark(x - b, y - b);
                assert_eq!(cell, expected, "module ({x}, {y}) incl. border");
            }
        }
    }
    els
}

#[test]
fn path_is_exactly_the_dark_modules() {
    let mut rng = Rng::new(11);
    for width in [1usize, 2, 11, 21, 63, 64, 65, 100, 127, 128, 129, 177] {
        for border in [0u32, 1, 4, 7] {
            let g = Grid::random(width, rng.next());
            let o = SvgOptions {
                border,
                ..SvgOptions::default()
            };
            check_svg(&g, &o, &svg(&g, &o));
        }
    }
    // Runs that cross the 64-module word boundaries are one subpath each.
    let g = Grid::from_fn(150, |x, _| (60..70).contains(&x) || x >= 120);
    let doc = svg(&g, &SvgOptions::default());
    check_svg(&g, &SvgOptions::default(), &doc);
    assert!(doc.contains("M64 4h10v1h-10z"));
    assert!(doc.contains("M124 4h30v1h-30z"));
}

#[test]
fn exact_small_document() {
    let g = Grid::parse(&["##.", "...", ".##"]);
    let o = SvgOptions {
        border: 1,
        module_size: 4,
        ..SvgOptions::default()
    };
    assert_eq!(
        svg(&g, &o),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"20\" height=\"20\" \
         viewBox=\"0 0 5 5\" shape-rendering=\"crispEdges\">\n\
         <rect width=\"5\" height=\"5\" fill=\"#ffffff\"/>\n\
         <path fill=\"#000000\" d=\"M1 1h2v1h-2zM2 3h2v1h-2z\"/>\n\
         </svg>\n"
    );
}

#[test]
fn dimensions_and_size() {
    let g = Grid::random(21, 1);
    let o = SvgOptions {
        dimensions: SvgDimensions::ViewBoxOnly,
        ..SvgOptions::default()
    };
    check_svg(&g, &o, &svg(&g, &o));
    let o = SvgOptions {
        size: Some(333),
        ..SvgOptions::default()
    };
    let doc = svg(&g, &o);
    check_svg(&g, &o, &doc);
    assert!(doc.contains("width=\"333\" height=\"333\" viewBox=\"0 0 29 29\""));
}

#[test]
fn colours_and_opacity() {
    let g = Grid::random(21, 2);
    // fg, bg, rect fill, rect fill-opacity, path fill-opacity
    type Case = (
        Color,
        Color,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let cases: [Case; 5] = [
        (Color::BLACK, Color::WHITE, Some("#ffffff"), None, None),
        (Color::rgb(1, 2, 3), Color::TRANSPARENT, None, None, None),
        (
            Color::rgba(0x10, 0x20, 0x30, 128),
            Color::rgba(255, 0, 0, 51),
            Some("#ff0000"),
            Some("0.2"),
            Some("0.502"),
        ),
        (
            Color::rgba(0, 0, 0, 0),
            Color::rgba(0, 0, 0, 254),
            Some("#000000"),
            Some("0.996"),
            Some("0"),
        ),
        (
            Color::rgba(0, 0, 0, 1),
            Color::WHITE,
            Some("#ffffff"),
            None,
            Some("0.004"),
        ),
    ];
    for (fg, bg, rect_fill, rect_op, path_op) in cases {
        let o = SvgOptions {
            fg,
            bg,
            ..SvgOptions::default()
        };
        let els = check_svg(&g, &o, &svg(&g, &o));
        let rect = els.iter().find(|e| e.name == "rect");
        assert_eq!(rect.and_then(|r| r.attr("fill")), rect_fill);
        assert_eq!(rect.and_then(|r| r.attr("fill-opacity")), rect_op);
        let path = els.iter().find(|e| e.name == "path").unwrap();
        let mut hex = String::new();
        fg.push_hex(&mut hex, false);
        assert_eq!(path.attr("fill"), Some(hex.as_str()));
        assert_eq!(path.attr("fill-opacity"), path_op);
    }
}

#[test]
fn title_is_escaped() {
    let g = Grid::random(21, 3);
    let title = "<script>alert('x&y')</script> \"quoted\" \u{1} ]]> é";
    let o = SvgOptions {
        title: Some(title.into()),
        ..SvgOptions::default()
    };
    let doc = svg(&g, &o);
    let els = check_svg(&g, &o, &doc);
    assert_eq!(els[1].name, "title");
    assert_eq!(
        els[1].text,
        "<script>alert('x&y')</script> \"quoted\"  ]]> é"
    );
    assert!(!doc.contains("<script"));
}

#[test]
fn empty_and_full_symbols() {
    let light = Grid::new(21);
    let doc = svg(&light, &SvgOptions::default());
    let els = check_svg(&light, &SvgOptions::default(), &doc);
    assert!(els.iter().all(|e| e.name != "path"));
    let dark = Grid::from_fn(21, |_, _| true);
    let doc = svg(&dark, &SvgOptions::default());
    check_svg(&dark, &SvgOptions::default(), &doc);
    assert_eq!(doc.matches('M').count(), 21);
}

#[test]
fn absurd_options_do_not_panic() {
    let g = Grid::random(25, 4);
    let o = SvgOptions {
        border: u32::MAX,
        module_size: u32::MAX,
        ..SvgOptions::default()
    };
    let doc = svg(&g, &o);
    parse_xml(&doc);
    let total = 25 + 2 * u64::from(u32::MAX);
    assert!(doc.contains(&format!("viewBox=\"0 0 {total} {total}\"")));
    assert!(doc.contains(&format!("width=\"{}\"", u64::MAX)));
    let o = SvgOptions {
        module_size: 0,
        ..SvgOptions::default()
    };
    check_svg(&g, &o, &svg(&g, &o));
}

#[test]
fn run_count_matches_naive() {
    let mut rng = Rng::new(5);
    for width in [1usize, 63, 64, 65, 128, 129, 177] {
        let g = Grid::random(width, rng.next());
        for y in 0..width {
            let naive = (0..width)
                .filter(|&x| g.is_dark(x, y) && (x == 0 || !g.is_dark(x - 1, y)))
                .count();
            assert_eq!(count_runs(g.row(y)) as usize, naive);
        }
    }
}

#[test]
fn appends_to_existing_text() {
    let g = Grid::random(21, 6);
    let mut s = String::from("before");
    write_svg(&g, &SvgOptions::default(), &mut s);
    assert!(s.starts_with("before<svg "));
    check_svg(&g, &SvgOptions::default(), &s["before".len()..]);
}
