//! Dense matrices of factor vectors, one row per user or item.

use crate::error::ModelError;

use super::simd::{flat, flat_mut, F32x8};

/// A `rows × dim` matrix of `f32` factors.
///
/// Stored row-major with every row padded with zeros to a multiple of eight
/// floats and aligned to 32 bytes, so that the training kernels read whole
/// vector registers and never straddle cache lines; the padding stays zero
/// through training. Readers see rows of exactly `dim` floats.
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    rows: usize,
    dim: usize,
    lanes: usize,
    data: Vec<F32x8>,
}

impl Factors {
    /// An all-zero matrix.
    pub fn zeros(rows: usize, dim: usize) -> Self {
        let lanes = dim.div_ceil(8);
        let mut data = Vec::with_capacity(rows * lanes);
        huge_pages::advise(&data);
        data.resize(rows * lanes, F32x8::default());
        Self {
            rows,
            dim,
            lanes,
            data,
        }
    }

    /// Wraps a row-major `rows × dim` array (e.g. read from a snapshot).
    pub fn from_row_major(rows: usize, dim: usize, values: &[f32]) -> Result<Self, ModelError> {
        if rows.checked_mul(dim) != Some(values.len()) {
            return Err(ModelError::Shape {
                model: super::NAME,
                message: format!(
                    "{} factor values do not form a {rows} × {dim} matrix",
                    values.len()
                ),
            });
        }
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(ModelError::Shape {
                model: super::NAME,
                message: format!("factor value {bad} is not a finite number"),
            });
        }
        let mut factors = Self::zeros(rows, dim);
        if dim > 0 {
            for (r, row) in values.chunks_exact(dim).enumerate() {
                factors.row_mut(r).copy_from_slice(row);
            }
        }
        Ok(factors)
    }

    /// Number of rows (users or items).
    pub fn n_rows(&self) -> usize {
        self.rows
    }

    /// Number of factors per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `r` (`dim` floats), or `None` outside the matrix.
    pub fn get(&self, r: usize) -> Option<&[f32]> {
        (r < self.rows).then(|| &flat(self.padded(r))[..self.dim])
    }

    /// All rows, row-major, without padding (`rows × dim` floats), e.g. to
    /// save a snapshot.
    pub fn to_row_major(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.dim);
        for r in 0..self.rows {
            out.extend_from_slice(&flat(self.padded(r))[..self.dim]);
        }
        out
    }

    /// Number of eight-float groups per stored row.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes
    }

    /// Row `r` with its padding. Panics outside the matrix (internal use only).
    pub(crate) fn padded(&self, r: usize) -> &[F32x8] {
        &self.data[r * self.lanes..(r + 1) * self.lanes]
    }

    /// All stored rows, padded, back to back.
    pub(crate) fn data(&self) -> &[F32x8] {
        &self.data
    }

    /// Mutable access to all stored rows; callers keep the padding zero.
    pub(crate) fn data_mut(&mut self) -> &mut [F32x8] {
        &mut self.data
    }

    /// Row `r` without padding, writable. Panics outside the matrix.
    pub(crate) fn row_mut(&mut self, r: usize) -> &mut [f32] {
        let dim = self.dim;
        let lanes = self.lanes;
        &mut flat_mut(&mut self.data[r * lanes..(r + 1) * lanes])[..dim]
    }
}

/// Asks the kernel to back large factor matrices with 2 MiB pages.
///
/// Training reads rows of the other side's factors in random order (every
/// observed pair, every CG pass); with 4 KiB pages nearly every such read of a
/// matrix larger than the TLB reach also misses the TLB. Transparent huge pages
/// are often enabled only on request (`madvise` mode), hence the request. Only
/// an optimization: on other systems, or if the kernel refuses, nothing changes.
mod huge_pages {
    use super::F32x8;

    const HUGE_PAGE: usize = 2 << 20;

    /// Advises the 2 MiB-aligned interior of `data`'s allocation (its full
    /// capacity) before any of it is written, so that the first writes fault
    /// in huge pages.
    #[cfg(target_os = "linux")]
    pub(super) fn advise(data: &Vec<F32x8>) {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, length: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        let bytes = data.capacity() * std::mem::size_of::<F32x8>();
        if bytes < 2 * HUGE_PAGE {
            return;
        }
        let start = data.as_ptr() as usize;
        let first = start.next_multiple_of(HUGE_PAGE);
        let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > first {
            // SAFETY: the range lies inside this vector's own allocation, and
            // MADV_HUGEPAGE only changes how the kernel backs it, never its
            // contents or validity; a failure is harmless and ignored.
            unsafe {
                madvise(first as *mut std::ffi::c_void, end - first, MADV_HUGEPAGE);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn advise(_data: &Vec<F32x8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_rows_and_round_trips() {
        let values: Vec<f32> = (0..30).map(|v| v as f32).collect();
        let f = Factors::from_row_major(3, 10, &values).unwrap();
        assert_eq!((f.n_rows(), f.dim(), f.lanes()), (3, 10, 2));
        assert_eq!(f.get(1).unwrap(), &values[10..20]);
        assert_eq!(flat(f.padded(1))[10..], [0.0; 6]);
        assert!(f.get(3).is_none());
        assert_eq!(f.to_row_major(), values);
        assert!(Factors::from_row_major(3, 10, &values[..29]).is_err());
        assert!(Factors::from_row_major(1, 1, &[f32::NAN]).is_err());
        assert_eq!(Factors::from_row_major(0, 0, &[]).unwrap().n_rows(), 0);
    }
}
