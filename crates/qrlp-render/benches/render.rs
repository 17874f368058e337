//! Rendering benchmarks on the README's example symbol (version 3, 29 × 29 modules).
//!
//! `cargo bench -p qrlp-render --bench render`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use qrlp_qr::{EcLevel, QrCode};
use qrlp_render::{
    render_png, render_png_into, render_svg, render_svg_into, render_terminal, RenderOptions,
    SvgOptions, TerminalOptions,
};

const URL: &str = "https://example.com/product/12345?ref=qr";

fn benches(c: &mut Criterion) {
    let code = QrCode::encode_text(URL, EcLevel::M).expect("encodes");
    let png_opts = RenderOptions::default(); // 10 px per module, border 4: 370 × 370 px
    let svg_opts = SvgOptions::default();

    c.bench_function("png_v3_370px", |b| {
        b.iter(|| render_png(black_box(&code), black_box(&png_opts)).unwrap())
    });
    let mut buf = Vec::new();
    c.bench_function("png_v3_370px_reused_buffer", |b| {
        b.iter(|| {
            buf.clear();
            render_png_into(black_box(&code), black_box(&png_opts), &mut buf).unwrap();
        })
    });
    c.bench_function("encode_and_png_v3", |b| {
        b.iter(|| {
            let code = QrCode::encode_text(black_box(URL), EcLevel::M).unwrap();
            render_png(&code, &png_opts).unwrap()
        })
    });
    let big = RenderOptions {
        size: Some(2000),
        ..RenderOptions::default()
    };
    c.bench_function("png_v3_2000px", |b| {
        b.iter(|| render_png(black_box(&code), black_box(&big)).unwrap())
    });
    c.bench_function("svg_v3", |b| {
        b.iter(|| render_svg(black_box(&code), black_box(&svg_opts)))
    });
    let mut s = String::new();
    c.bench_function("svg_v3_reused_buffer", |b| {
        b.iter(|| {
            s.clear();
            render_svg_into(black_box(&code), black_box(&svg_opts), &mut s);
        })
    });
    c.bench_function("terminal_v3", |b| {
        b.iter(|| render_terminal(black_box(&code), &TerminalOptions::default()))
    });
}

criterion_group!(render, benches);
criterion_main!(render);
