//! The IDX file format (LeCun et al., MNIST), plain or gzip-compressed.
//!
//! ```text
//! magic: 0x00 0x00 <type> <ndims>     type 0x08 = unsigned byte
//! dims:  ndims × u32, big-endian
//! data:  Π dims elements, row-major
//! ```

use std::io::Read;
use std::path::Path;

use crate::{DataError, Result};

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an IDX file, decompressing it first when it starts with the gzip magic `1f 8b`.
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read or its gzip stream is corrupt, and the errors
/// of [`parse_idx`]; each names `path`.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut bytes = Vec::with_capacity(raw.len() * 2);
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut bytes).map_err(io)?;
        parse_idx(&bytes, path)
    } else {
        parse_idx(&raw, path)
    }
}

/// Parses the bytes of an (uncompressed) IDX file; `path` is only used in errors.
///
/// # Errors
/// [`DataError::BadMagic`], [`DataError::UnsupportedType`] or [`DataError::SizeMismatch`]
/// (truncated data or trailing bytes).
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let bad_magic =
        || DataError::BadMagic { path: path.into(), found: bytes[..bytes.len().min(4)].to_vec() };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[3] == 0 {
        return Err(bad_magic());
    }
    if bytes[2] != 0x08 {
        return Err(DataError::UnsupportedType { path: path.into(), code: bytes[2] });
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(DataError::SizeMismatch {
            path: path.into(),
            expected: header,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
    let found = bytes.len() - header;
    if found != expected {
        return Err(DataError::SizeMismatch { path: path.into(), expected, found });
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Encodes an unsigned-byte IDX file: the magic `00 00 08 <ndims>`, the big-endian dims, then
/// `data` as given (its length is not checked, so tests can write broken files).
///
/// # Panics
/// When `dims` has more than 255 entries.
pub fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let ndims = u8::try_from(dims.len()).expect("IDX holds at most 255 dimensions");
    let mut out = vec![0, 0, 0x08, ndims];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::encode_idx as idx;
    use super::*;

    #[test]
    fn the_encoding_is_the_documented_byte_layout() {
        assert_eq!(encode_idx(&[2, 258], &[9]), [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 1, 2, 9]);
    }

    #[test]
    fn parses_a_hand_written_2x3_array() {
        let arr = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6]), Path::new("m")).unwrap();
        assert_eq!(arr, IdxArray { dims: vec![2, 3], data: vec![1, 2, 3, 4, 5, 6] });
    }

    #[test]
    fn a_header_of_258_rows_is_read_big_endian() {
        let arr = parse_idx(&idx(&[258], &[7; 258]), Path::new("m")).unwrap();
        assert_eq!(arr.dims, [258]);
    }

    #[test]
    fn bad_magic_unsupported_type_truncation_and_trailing_bytes_are_errors() {
        let p = Path::new("f.idx");
        let err = parse_idx(b"PK\x03\x04rest", p).unwrap_err().to_string();
        assert!(err.contains("f.idx") && err.contains("not an IDX file"), "{err}");
        let mut float = idx(&[1], &[0, 0, 0, 0]);
        float[2] = 0x0D;
        assert!(parse_idx(&float, p).unwrap_err().to_string().contains("0x0d"));
        let short = idx(&[2, 3], &[1, 2, 3, 4, 5]);
        let err = parse_idx(&short, p).unwrap_err().to_string();
        assert!(err.contains("announces 6 bytes") && err.contains("has 5"), "{err}");
        let long = idx(&[2], &[1, 2, 3]);
        assert!(parse_idx(&long, p).unwrap_err().to_string().contains("has 3"));
        assert!(parse_idx(&[0, 0, 8], p).is_err());
    }
}
