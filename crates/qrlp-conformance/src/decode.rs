//! Reading our PNGs back with independent crates: `png` to pixels, rqrr to bytes.

/// Decodes every QR symbol rqrr finds in a PNG file; each entry is one symbol's raw bytes.
///
/// # Panics
/// If the PNG itself cannot be read: in these tests that is a renderer bug.
pub fn png_with_rqrr(png_bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let stride = info.line_size;
    let channels = info.color_type.samples();
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * stride + x * channels]);
    img.detect_grids()
        .into_iter()
        .filter_map(|g| {
            let mut out = Vec::new();
            g.decode_to(&mut out).ok().map(|_| out)
        })
        .collect()
}
