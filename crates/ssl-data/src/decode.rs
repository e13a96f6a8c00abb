//! Decoding a JPEG or PNG file of any colour type into 8-bit RGB, as PIL's
//! `Image.open(path).convert("RGB")` does: gray repeated, palettes expanded, 16-bit samples
//! cut to their high byte, alpha dropped.

use std::io::Cursor;
use std::path::Path;

use kornia_image::{Image, ImageSize};

use crate::{DataError, Result};

/// The 8-bit RGB pixels of the JPEG or PNG file `path` (told apart by their first bytes).
///
/// # Errors
/// [`DataError::Io`] naming an unreadable file; [`DataError::Image`] naming a file that does
/// not decode.
pub(crate) fn read_rgb8(path: &Path) -> Result<Image<u8, 3>> {
    let bytes =
        std::fs::read(path).map_err(|source| DataError::Io { path: path.into(), source })?;
    rgb8(&bytes, path)
}

/// The `(width, height, pixels)` of a JPEG or PNG file's bytes, 8-bit RGB interleaved, as an
/// image folder decodes them (`path` names the file in errors).
///
/// # Errors
/// [`DataError::Image`] naming `path` when the bytes do not decode.
pub fn decode_image_rgb8(bytes: &[u8], path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let image = rgb8(bytes, path)?;
    Ok((image.width(), image.height(), image.as_slice().to_vec()))
}

/// The most pixels a file may declare: PIL's `Image.MAX_IMAGE_PIXELS` (above it PIL warns of a
/// decompression bomb). A 113-byte PNG can declare 327,680 × 46,854 pixels (found by
/// fuzzing); the check comes before any buffer is allocated.
pub const MAX_IMAGE_PIXELS: usize = 89_478_485;

/// `Ok` when a `w` × `h` image is within [`MAX_IMAGE_PIXELS`].
fn check_size(w: usize, h: usize, path: &Path) -> Result<()> {
    match w.checked_mul(h) {
        Some(n) if n <= MAX_IMAGE_PIXELS => Ok(()),
        _ => Err(DataError::Image {
            path: path.into(),
            reason: format!(
                "declares {w} × {h} pixels, more than the {MAX_IMAGE_PIXELS} an image may have \
                 (PIL's MAX_IMAGE_PIXELS)"
            ),
        }),
    }
}

fn rgb8(bytes: &[u8], path: &Path) -> Result<Image<u8, 3>> {
    let fail = |e: &dyn std::fmt::Display| DataError::Image {
        path: path.into(),
        reason: format!("does not decode: {e}"),
    };
    if !bytes.starts_with(b"\x89PNG") {
        // zune-jpeg converts gray and CMYK to RGB itself.
        let layout = kornia_io::jpeg::decode_image_jpeg_layout(bytes).map_err(|e| fail(&e))?;
        check_size(layout.image_size.width, layout.image_size.height, path)?;
        let mut image =
            Image::<u8, 3>::from_size_val(layout.image_size, 0).map_err(|e| fail(&e))?;
        kornia_io::jpeg::decode_image_jpeg_rgb8(bytes, &mut image).map_err(|e| fail(&e))?;
        return Ok(image);
    }
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| fail(&e))?;
    check_size(reader.info().width as usize, reader.info().height as usize, path)?;
    let (color, _) = reader.output_color_type();
    let size = reader.output_buffer_size().ok_or_else(|| fail(&"an image too large"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| fail(&e))?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let samples = color.samples();
    let rgb: Vec<u8> = buf[..frame.buffer_size()]
        .chunks_exact(frame.line_size)
        .flat_map(|row| row[..w * samples].chunks_exact(samples))
        .flat_map(|px| match samples {
            1 | 2 => [px[0], px[0], px[0]],
            _ => [px[0], px[1], px[2]],
        })
        .collect();
    Image::<u8, 3>::new(ImageSize { width: w, height: h }, rgb).map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssl_testutil::ScratchDir;

    /// Writes a `w` × `h` PNG of `color` from raw samples.
    fn write_png(path: &Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(data).unwrap();
    }

    #[test]
    fn gray_gray_alpha_rgb_and_rgba_pngs_come_out_rgb() {
        let dir = ScratchDir::new("decode-png");
        let cases: [(png::ColorType, Vec<u8>); 4] = [
            (png::ColorType::Grayscale, vec![10, 20, 30, 40, 50, 60]),
            (png::ColorType::GrayscaleAlpha, vec![10, 255, 20, 0, 30, 9, 40, 9, 50, 9, 60, 9]),
            (png::ColorType::Rgb, (0..18).collect()),
            (png::ColorType::Rgba, (0..24).collect()),
        ];
        for (i, (color, data)) in cases.iter().enumerate() {
            let path = dir.join(format!("{i}.png"));
            write_png(&path, 3, 2, *color, data);
            let image = read_rgb8(&path).unwrap();
            assert_eq!((image.width(), image.height()), (3, 2));
            let px = image.as_slice();
            let want: Vec<u8> = match color {
                png::ColorType::Grayscale => data.iter().flat_map(|&v| [v, v, v]).collect(),
                png::ColorType::GrayscaleAlpha => {
                    data.chunks(2).flat_map(|p| [p[0], p[0], p[0]]).collect()
                }
                png::ColorType::Rgb => data.clone(),
                _ => data.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
            };
            assert_eq!(px, &want[..], "{color:?}");
        }
    }

    #[test]
    fn a_png_declaring_more_pixels_than_pil_allows_is_an_error_before_any_allocation() {
        // The fuzzer's find, with valid checksums: 68 bytes declaring 327,680 × 46,854 RGBA
        // pixels (61 GB).
        let crash: &[u8] = include_bytes!("../../../fuzz/seeds/image_folder/too-many-pixels.png");
        let err = decode_image_rgb8(crash, Path::new("bomb.png")).unwrap_err().to_string();
        assert!(err.contains("bomb.png") && err.contains("327680 × 46854"), "{err}");
    }

    #[test]
    fn a_palette_png_is_expanded_to_its_colours() {
        let dir = ScratchDir::new("decode-palette");
        let path = dir.join("p.png");
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 2, 1);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![1, 2, 3, 200, 100, 50]);
        enc.write_header().unwrap().write_image_data(&[1, 0]).unwrap();
        assert_eq!(read_rgb8(&path).unwrap().as_slice(), [200, 100, 50, 1, 2, 3]);
    }
}
