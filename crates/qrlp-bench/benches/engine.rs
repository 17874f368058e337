//! Workloads A-D of the QR engine issue, for qrlp and, in the same run, fast_qr and qrcode.
//!
//! A: matrix for payload A (ECC M, byte mode, v3). B: A + PNG at 10 px/module, 4-module
//! quiet zone (370x370), in memory. C: A + SVG string. D: matrix for the 1,000-character
//! payload (ECC M, v26).
//!
//! Run: `cargo bench -p qrlp-bench --bench engine`.

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion};
use fast_qr::convert::Builder;
use qrlp_bench::payloads;
use qrlp_qr::{EcLevel, Mode, Options, QrCode};
use qrlp_render::{png::render_png, svg::render_svg, RenderOptions, SvgOptions};

fn ours_matrix(data: &str) -> QrCode {
    let opts = Options {
        ecc: EcLevel::M,
        mode: Some(Mode::Byte),
        ..Options::default()
    };
    QrCode::encode_text_with(data, &opts).unwrap()
}

fn fast_qr_matrix(data: &str) -> fast_qr::QRCode {
    fast_qr::QRBuilder::new(data)
        .ecl(fast_qr::ECL::M)
        .mode(fast_qr::Mode::Byte)
        .build()
        .unwrap()
}

fn qrcode_matrix(data: &str) -> qrcode::QrCode {
    qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M).unwrap()
}

fn workloads(c: &mut Criterion) {
    let a = payloads::A.trim_end();
    let d = payloads::D.trim_end();
    assert_eq!(ours_matrix(a).width(), 29, "workload A is version 3");
    assert_eq!(ours_matrix(d).width(), 121, "workload D is version 26");
    let png_opts = RenderOptions {
        module_size: 10,
        border: 4,
        ..RenderOptions::default()
    };
    let svg_opts = SvgOptions::default();
    assert_eq!(
        qrlp_render::layout(&ours_matrix(a), &png_opts)
            .unwrap()
            .image_px,
        370
    );

    let mut g = c.benchmark_group("A_matrix");
    g.bench_function("qrlp", |b| b.iter(|| ours_matrix(black_box(a))));
    g.bench_function("fast_qr", |b| b.iter(|| fast_qr_matrix(black_box(a))));
    g.bench_function("qrcode", |b| b.iter(|| qrcode_matrix(black_box(a))));
    g.finish();

    let mut g = c.benchmark_group("B_png");
    g.bench_function("qrlp", |b| {
        b.iter(|| render_png(&ours_matrix(black_box(a)), &png_opts).unwrap())
    });
    g.bench_function("fast_qr", |b| {
        b.iter(|| {
            let q = fast_qr_matrix(black_box(a));
            fast_qr::convert::image::ImageBuilder::default()
                .fit_width(370)
                .margin(4)
                .to_bytes(&q)
                .unwrap()
        })
    });
    g.bench_function("qrcode", |b| {
        b.iter(|| {
            let q = qrcode_matrix(black_box(a));
            let img = q
                .render::<image::Luma<u8>>()
                .module_dimensions(10, 10)
                .build();
            let mut out = Vec::new();
            img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        })
    });
    g.finish();

    let mut g = c.benchmark_group("C_svg");
    g.bench_function("qrlp", |b| {
        b.iter(|| render_svg(&ours_matrix(black_box(a)), &svg_opts))
    });
    g.bench_function("fast_qr", |b| {
        b.iter(|| {
            let q = fast_qr_matrix(black_box(a));
            fast_qr::convert::svg::SvgBuilder::default().to_str(&q)
        })
    });
    g.bench_function("qrcode", |b| {
        b.iter(|| {
            qrcode_matrix(black_box(a))
                .render::<qrcode::render::svg::Color>()
                .build()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("D_matrix_1000");
    g.bench_function("qrlp", |b| b.iter(|| ours_matrix(black_box(d))));
    g.bench_function("fast_qr", |b| b.iter(|| fast_qr_matrix(black_box(d))));
    g.bench_function("qrcode", |b| b.iter(|| qrcode_matrix(black_box(d))));
    g.finish();
}

criterion_group!(benches, workloads);
criterion_main!(benches);
