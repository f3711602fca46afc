//! The users × items interaction matrix every collaborative model trains on.
//!
//! Stored in compressed sparse row form (CSR): for user `u`, the item indices
//! `indices[indptr[u]..indptr[u + 1]]` (strictly increasing) and their weights
//! `values[..]` at the same positions. A row is one contiguous slice, which is
//! what per-user work (fold-in, scoring, ALS user steps) wants; per-item work
//! (Gram matrices, item steps, similarities) uses [`Interactions::transpose`],
//! the items × users matrix in the same form, i.e. the CSC form of the original.

use crate::ValidationError;

/// How repeated `(user, item)` pairs are merged when a matrix is built.
///
/// Event logs often repeat a pair (a user plays a song twice). Counting models
/// want the repeats summed; models of "has interacted" want them collapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Weights of a repeated pair are added up.
    Sum,
    /// A repeated pair keeps its largest weight (binary data stays binary).
    #[default]
    Max,
}

/// A sparse users × items matrix of interaction weights (CSR).
///
/// Built once from triples, then read-only: models index it by dense user and
/// item indices. Memory: 4 bytes per index, 4 per weight, one `usize` per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl Interactions {
    /// Builds the matrix from `(user, item, weight)` triples in any order.
    ///
    /// Repeated pairs are merged as `duplicates` says. The result does not depend
    /// on the order of the triples: each row is sorted by item, and the weights of
    /// a repeated pair by value, before they are merged, so even floating-point
    /// sums come out bit-identical. Zero weights are kept as explicit entries (an
    /// interaction with weight 0 is still an interaction).
    ///
    /// Refuses an index outside `n_users × n_items`, a non-finite weight, or a
    /// shape whose indices do not fit `u32`.
    pub fn from_triples(
        n_users: usize,
        n_items: usize,
        triples: impl IntoIterator<Item = (u32, u32, f32)>,
        duplicates: Duplicates,
    ) -> Result<Self, ValidationError> {
        check_shape(n_users, n_items)?;
        let triples: Vec<(u32, u32, f32)> = triples.into_iter().collect();
        let mut counts = vec![0usize; n_users + 1];
        for (k, &(user, item, weight)) in triples.iter().enumerate() {
            if user as usize >= n_users {
                return Err(out_of_range("user", user, n_users).at_index(k));
            }
            if item as usize >= n_items {
                return Err(out_of_range("item", item, n_items).at_index(k));
            }
            if !weight.is_finite() {
                return Err(ValidationError::field(
                    "invalid_value",
                    "weight",
                    format!("weight {weight} is not a finite number"),
                )
                .at_index(k));
            }
            counts[user as usize + 1] += 1;
        }
        for u in 0..n_users {
            counts[u + 1] += counts[u];
        }
        // Counting sort by user: one pass, no comparison sort of all triples.
        let mut next = counts.clone();
        let mut by_user = vec![(0u32, 0f32); triples.len()];
        for &(user, item, weight) in &triples {
            let slot = &mut next[user as usize];
            by_user[*slot] = (item, weight);
            *slot += 1;
        }
        drop(triples);

        let mut indptr = Vec::with_capacity(n_users + 1);
        let mut indices = Vec::with_capacity(by_user.len());
        let mut values = Vec::with_capacity(by_user.len());
        indptr.push(0);
        for u in 0..n_users {
            let row = &mut by_user[counts[u]..counts[u + 1]];
            row.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let mut k = 0;
            while k < row.len() {
                let item = row[k].0;
                let mut merged = row[k].1;
                k += 1;
                while k < row.len() && row[k].0 == item {
                    merged = match duplicates {
                        Duplicates::Sum => merged + row[k].1,
                        Duplicates::Max => merged.max(row[k].1),
                    };
                    k += 1;
                }
                indices.push(item);
                values.push(merged);
            }
            indptr.push(indices.len());
        }
        Ok(Self {
            n_users,
            n_items,
            indptr,
            indices,
            values,
        })
    }

    /// Wraps CSR arrays that were built elsewhere (a snapshot, another matrix),
    /// after checking every invariant the accessors rely on.
    pub fn from_csr(
        n_users: usize,
        n_items: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self, ValidationError> {
        check_shape(n_users, n_items)?;
        let invalid = |message: String| ValidationError::field("invalid_matrix", "indptr", message);
        if indptr.len() != n_users + 1 || indptr.first() != Some(&0) {
            return Err(invalid(format!(
                "indptr must have {} entries starting at 0",
                n_users + 1
            )));
        }
        if indices.len() != values.len() || indptr.last() != Some(&indices.len()) {
            return Err(invalid(
                "indptr, indices and values disagree on the number of entries".into(),
            ));
        }
        for u in 0..n_users {
            let (start, end) = (indptr[u], indptr[u + 1]);
            if start > end {
                return Err(invalid(format!("indptr decreases at row {u}")));
            }
            let row = &indices[start..end];
            if row.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(format!(
                    "row {u} has unsorted or repeated item indices"
                )));
            }
            if let Some(&item) = row.last() {
                if item as usize >= n_items {
                    return Err(out_of_range("item", item, n_items));
                }
            }
        }
        if let Some(weight) = values.iter().find(|w| !w.is_finite()) {
            return Err(ValidationError::field(
                "invalid_value",
                "weight",
                format!("weight {weight} is not a finite number"),
            ));
        }
        Ok(Self {
            n_users,
            n_items,
            indptr,
            indices,
            values,
        })
    }

    /// Number of rows (users).
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Number of columns (items).
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of stored entries (distinct `(user, item)` pairs).
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The items of `user` (increasing) and their weights; empty for a user
    /// index outside the matrix.
    pub fn row(&self, user: u32) -> (&[u32], &[f32]) {
        let u = user as usize;
        if u >= self.n_users {
            return (&[], &[]);
        }
        let range = self.indptr[u]..self.indptr[u + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Number of entries in `user`'s row.
    pub fn row_nnz(&self, user: u32) -> usize {
        self.row(user).0.len()
    }

    /// Row offsets: row `u` occupies `indptr()[u]..indptr()[u + 1]`.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column (item) index of every entry, row after row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Weight of every entry, aligned with [`Self::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of entries in every column: how many users touched each item
    /// (the training popularity of an item).
    pub fn column_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.n_items];
        for &item in &self.indices {
            counts[item as usize] += 1;
        }
        counts
    }

    /// The items × users matrix (the CSC form of this one), built in O(nnz).
    ///
    /// Built on demand rather than kept alongside, so that models that only need
    /// rows do not pay twice the memory.
    pub fn transpose(&self) -> Interactions {
        let mut indptr = vec![0usize; self.n_items + 1];
        for &item in &self.indices {
            indptr[item as usize + 1] += 1;
        }
        for i in 0..self.n_items {
            indptr[i + 1] += indptr[i];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for u in 0..self.n_users {
            for k in self.indptr[u]..self.indptr[u + 1] {
                let slot = &mut next[self.indices[k] as usize];
                // Users are visited in increasing order, so every new row comes out sorted.
                indices[*slot] = u as u32;
                values[*slot] = self.values[k];
                *slot += 1;
            }
        }
        Interactions {
            n_users: self.n_items,
            n_items: self.n_users,
            indptr,
            indices,
            values,
        }
    }
}

/// Both dimensions must be addressable by `u32` indices.
fn check_shape(n_users: usize, n_items: usize) -> Result<(), ValidationError> {
    let limit = u32::MAX as usize;
    if n_users > limit || n_items > limit {
        return Err(ValidationError::field(
            "invalid_matrix",
            "shape",
            format!("a {n_users} × {n_items} matrix does not fit 32-bit indices"),
        ));
    }
    Ok(())
}

fn out_of_range(field: &str, index: u32, len: usize) -> ValidationError {
    ValidationError::field(
        "index_out_of_range",
        field,
        format!("{field} index {index} is outside the matrix (it has {len} {field}s)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Interactions {
        let triples = [
            (1, 2, 1.0),
            (0, 1, 2.0),
            (1, 0, 3.0),
            (1, 2, 4.0),
            (0, 1, 0.5),
        ];
        Interactions::from_triples(3, 4, triples, Duplicates::Sum).unwrap()
    }

    #[test]
    fn builds_sorted_rows_and_merges_repeats() {
        let x = small();
        assert_eq!((x.n_users(), x.n_items(), x.nnz()), (3, 4, 3));
        assert_eq!(x.row(0), (&[1u32][..], &[2.5f32][..]));
        assert_eq!(x.row(1), (&[0u32, 2][..], &[3.0f32, 5.0][..]));
        assert_eq!(x.row(2), (&[][..], &[][..]));
        assert_eq!(x.row(7), (&[][..], &[][..]));
        assert_eq!(x.column_counts(), vec![1, 1, 1, 0]);

        let max = Interactions::from_triples(
            3,
            4,
            [(1, 2, 1.0), (1, 2, 4.0), (1, 2, 2.0)],
            Duplicates::Max,
        )
        .unwrap();
        assert_eq!(max.row(1), (&[2u32][..], &[4.0f32][..]));
    }

    #[test]
    fn transpose_is_the_csc_form() {
        let t = small().transpose();
        assert_eq!((t.n_users(), t.n_items(), t.nnz()), (4, 3, 3));
        assert_eq!(t.row(0), (&[1u32][..], &[3.0f32][..]));
        assert_eq!(t.row(1), (&[0u32][..], &[2.5f32][..]));
        assert_eq!(t.row(2), (&[1u32][..], &[5.0f32][..]));
        assert_eq!(t.row_nnz(3), 0);
    }

    #[test]
    fn refuses_bad_triples() {
        let err = Interactions::from_triples(2, 2, [(0, 0, 1.0), (2, 0, 1.0)], Duplicates::Max)
            .unwrap_err();
        assert_eq!(err.code, "index_out_of_range");
        assert_eq!(err.field.as_deref(), Some("[1].user"));
        let err = Interactions::from_triples(2, 2, [(0, 5, 1.0)], Duplicates::Max).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("[0].item"));
        let err =
            Interactions::from_triples(2, 2, [(0, 0, f32::NAN)], Duplicates::Max).unwrap_err();
        assert_eq!(err.code, "invalid_value");
    }

    #[test]
    fn from_csr_checks_invariants() {
        let x = small();
        let rebuilt = Interactions::from_csr(
            3,
            4,
            x.indptr().to_vec(),
            x.indices().to_vec(),
            x.values().to_vec(),
        );
        assert_eq!(rebuilt.unwrap(), x);
        assert!(Interactions::from_csr(1, 4, vec![0, 2], vec![2, 1], vec![1.0, 1.0]).is_err());
        assert!(Interactions::from_csr(1, 2, vec![0, 1], vec![2], vec![1.0]).is_err());
        assert!(Interactions::from_csr(2, 2, vec![0, 1], vec![0], vec![1.0]).is_err());
        assert!(Interactions::from_csr(1, 2, vec![0, 1], vec![0], vec![]).is_err());
    }

    fn triples() -> impl Strategy<Value = (usize, usize, Vec<(u32, u32, f32)>)> {
        (1usize..12, 1usize..12).prop_flat_map(|(n_users, n_items)| {
            let triple = (0..n_users as u32, 0..n_items as u32, -8i8..8)
                .prop_map(|(u, i, w)| (u, i, f32::from(w) * 0.37));
            (
                Just(n_users),
                Just(n_items),
                proptest::collection::vec(triple, 0..80),
            )
        })
    }

    proptest! {
        #[test]
        fn transpose_twice_round_trips((n_users, n_items, t) in triples()) {
            for duplicates in [Duplicates::Sum, Duplicates::Max] {
                let x = Interactions::from_triples(n_users, n_items, t.clone(), duplicates).unwrap();
                prop_assert_eq!(x.transpose().transpose(), x);
            }
        }

        #[test]
        fn order_of_triples_does_not_matter((n_users, n_items, t) in triples(), seed in any::<u64>()) {
            let mut shuffled = t.clone();
            // A deterministic Fisher–Yates shuffle driven by the generated seed.
            let mut state = seed | 1;
            for k in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(k, (state % (k as u64 + 1)) as usize);
            }
            for duplicates in [Duplicates::Sum, Duplicates::Max] {
                let a = Interactions::from_triples(n_users, n_items, t.clone(), duplicates).unwrap();
                let b = Interactions::from_triples(n_users, n_items, shuffled.clone(), duplicates).unwrap();
                prop_assert_eq!(&a, &b);
            }
        }

        #[test]
        fn agrees_with_a_dense_build((n_users, n_items, t) in triples()) {
            let mut dense = vec![None::<f32>; n_users * n_items];
            for &(u, i, w) in &t {
                let cell = &mut dense[u as usize * n_items + i as usize];
                *cell = Some(cell.map_or(w, |old: f32| old.max(w)));
            }
            let x = Interactions::from_triples(n_users, n_items, t, Duplicates::Max).unwrap();
            let t = x.transpose();
            for u in 0..n_users {
                for i in 0..n_items {
                    let (items, weights) = x.row(u as u32);
                    let got = items.iter().position(|&j| j as usize == i).map(|k| weights[k]);
                    prop_assert_eq!(got, dense[u * n_items + i]);
                    let (users, weights) = t.row(i as u32);
                    let got = users.iter().position(|&v| v as usize == u).map(|k| weights[k]);
                    prop_assert_eq!(got, dense[u * n_items + i]);
                }
            }
        }
    }
}
