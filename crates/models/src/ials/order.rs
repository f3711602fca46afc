//! Relabelling users and items by decreasing number of interactions while
//! training.
//!
//! Every observed pair makes a half-iteration read the other side's vector at
//! a random place. Interactions are skewed — a small share of items (and, less
//! so, of users) takes most of them — so numbering the busiest rows first packs
//! the vectors read most often into a few megabytes that stay in cache, and
//! puts the heaviest rows at the start of the parallel loops, where they
//! balance best across threads. Nothing else changes: the objective does not
//! depend on the numbering, and the trained factors are put back in the
//! caller's order.

use rayon::prelude::*;
use tephra_core::Interactions;

use super::factors::Factors;
use crate::error::ModelError;

/// A relabelling of both sides: `users[new] = old`, `items[new] = old`.
#[derive(Debug, Clone)]
pub(crate) struct Ordering {
    users: Vec<u32>,
    items: Vec<u32>,
}

impl Ordering {
    /// Busiest first on both sides; ties keep the original order, so the
    /// relabelling is deterministic.
    pub(crate) fn by_degree(x: &Interactions) -> Self {
        let users = busiest_first(
            (0..x.n_users())
                .map(|u| x.row_nnz(u as u32) as u32)
                .collect(),
        );
        let items = busiest_first(x.column_counts());
        Self { users, items }
    }

    /// Original index of the user now numbered `new`.
    #[cfg(test)]
    pub(crate) fn user(&self, new: usize) -> u32 {
        self.users[new]
    }

    /// Original index of the item now numbered `new`.
    #[cfg(test)]
    pub(crate) fn item(&self, new: usize) -> u32 {
        self.items[new]
    }

    /// `x` relabelled, and its transpose, in O(nnz): the rows of the first
    /// are re-sorted in parallel while the second is built by a counting sort
    /// on another thread.
    pub(crate) fn apply(
        &self,
        x: &Interactions,
    ) -> Result<(Interactions, Interactions), ModelError> {
        let mut new_item = vec![0u32; self.items.len()];
        for (new, &old) in self.items.iter().enumerate() {
            new_item[old as usize] = new as u32;
        }
        let (relabelled, transposed) = rayon::join(
            || self.relabel_rows(x, &new_item),
            || self.relabel_columns(x, &new_item),
        );
        let shape = |e: tephra_core::ValidationError| ModelError::Shape {
            model: super::NAME,
            message: format!("relabelling the interaction matrix: {e}"),
        };
        Ok((relabelled.map_err(shape)?, transposed.map_err(shape)?))
    }

    /// Users × items in the new labels: each new row is the old row with its
    /// items renamed and re-sorted.
    fn relabel_rows(
        &self,
        x: &Interactions,
        new_item: &[u32],
    ) -> Result<Interactions, tephra_core::ValidationError> {
        let mut indptr = Vec::with_capacity(self.users.len() + 1);
        indptr.push(0usize);
        for &old in &self.users {
            indptr.push(indptr[indptr.len() - 1] + x.row_nnz(old));
        }
        let mut indices = vec![0u32; x.nnz()];
        let mut values = vec![0f32; x.nnz()];
        let mut rows = Vec::with_capacity(self.users.len());
        let (mut rest_i, mut rest_v) = (&mut indices[..], &mut values[..]);
        for &old in &self.users {
            let len = x.row_nnz(old);
            let (i, tail_i) = rest_i.split_at_mut(len);
            let (v, tail_v) = rest_v.split_at_mut(len);
            rows.push((old, i, v));
            (rest_i, rest_v) = (tail_i, tail_v);
        }
        rows.into_par_iter().with_min_len(256).for_each_init(
            Vec::new,
            |pairs, (old, out_i, out_v)| {
                let (items, weights) = x.row(old);
                pairs.clear();
                pairs.extend(
                    items
                        .iter()
                        .zip(weights)
                        .map(|(&item, &weight)| (new_item[item as usize], weight)),
                );
                pairs.sort_unstable_by_key(|p| p.0);
                for ((i, v), &(item, weight)) in out_i.iter_mut().zip(out_v.iter_mut()).zip(&*pairs)
                {
                    *i = item;
                    *v = weight;
                }
            },
        );
        Interactions::from_csr(x.n_users(), x.n_items(), indptr, indices, values)
    }

    /// Items × users in the new labels, by a counting sort: visiting users in
    /// their new order leaves every item's row sorted.
    fn relabel_columns(
        &self,
        x: &Interactions,
        new_item: &[u32],
    ) -> Result<Interactions, tephra_core::ValidationError> {
        let mut indptr = vec![0usize; x.n_items() + 1];
        for &item in x.indices() {
            indptr[new_item[item as usize] as usize + 1] += 1;
        }
        for i in 0..x.n_items() {
            indptr[i + 1] += indptr[i];
        }
        let mut next = indptr.clone();
        let mut users = vec![0u32; x.nnz()];
        let mut values = vec![0f32; x.nnz()];
        for (new_user, &old_user) in self.users.iter().enumerate() {
            let (items, weights) = x.row(old_user);
            for (&item, &weight) in items.iter().zip(weights) {
                let slot = &mut next[new_item[item as usize] as usize];
                users[*slot] = new_user as u32;
                values[*slot] = weight;
                *slot += 1;
            }
        }
        Interactions::from_csr(x.n_items(), x.n_users(), indptr, users, values)
    }

    /// Original indices of the users, in the new order.
    pub(crate) fn users(&self) -> &[u32] {
        &self.users
    }

    /// Original indices of the items, in the new order.
    pub(crate) fn items(&self) -> &[u32] {
        &self.items
    }

    /// Relabelled user factors back in the caller's numbering.
    pub(crate) fn restore_users(&self, factors: &Factors) -> Factors {
        Self::restore(&self.users, factors)
    }

    /// Relabelled item factors back in the caller's numbering.
    pub(crate) fn restore_items(&self, factors: &Factors) -> Factors {
        Self::restore(&self.items, factors)
    }

    /// Puts relabelled user and item factors back in the caller's numbering,
    /// in place: no second copy of the factors is allocated (and, on large
    /// models, no fresh memory has to be faulted in).
    pub(crate) fn restore_in_place(&self, users: &mut Factors, items: &mut Factors) {
        let (a, b) = (&self.users, &self.items);
        rayon::join(|| permute_rows(a, users), || permute_rows(b, items));
    }

    /// Factors of the relabelled users (or items) back in the original order.
    pub(crate) fn restore(new_to_old: &[u32], factors: &Factors) -> Factors {
        let dim = factors.dim();
        let mut restored = Factors::zeros(factors.n_rows(), dim);
        let lanes = restored.lanes();
        if lanes == 0 {
            return restored;
        }
        let mut old_to_new = vec![0u32; new_to_old.len()];
        for (new, &old) in new_to_old.iter().enumerate() {
            old_to_new[old as usize] = new as u32;
        }
        restored
            .data_mut()
            .par_chunks_mut(lanes)
            .zip(old_to_new.par_iter())
            .for_each(|(row, &new)| row.copy_from_slice(factors.padded(new as usize)));
        restored
    }
}

/// Moves row `new` of `factors` to row `new_to_old[new]`, for every row,
/// following the permutation's cycles with one spare row.
fn permute_rows(new_to_old: &[u32], factors: &mut Factors) {
    let lanes = factors.lanes();
    if lanes == 0 {
        return;
    }
    let data = factors.data_mut();
    let mut placed = vec![false; new_to_old.len()];
    let mut carried = vec![Default::default(); lanes];
    for start in 0..new_to_old.len() {
        if placed[start] || new_to_old[start] as usize == start {
            continue;
        }
        // Carry the row at `start` to its destination, pick up the row found
        // there, and so on until the cycle closes at `start`.
        carried.copy_from_slice(&data[start * lanes..(start + 1) * lanes]);
        let mut at = start;
        loop {
            let to = new_to_old[at] as usize;
            placed[at] = true;
            if to == start {
                data[to * lanes..(to + 1) * lanes].copy_from_slice(&carried);
                break;
            }
            let slot = &mut data[to * lanes..(to + 1) * lanes];
            for (x, y) in slot.iter_mut().zip(carried.iter_mut()) {
                std::mem::swap(x, y);
            }
            at = to;
        }
    }
}

/// Indices sorted by decreasing `degree`, ties by index.
fn busiest_first(degree: Vec<u32>) -> Vec<u32> {
    let mut order: Vec<u32> = (0..degree.len() as u32).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(degree[i as usize]), i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::Duplicates;

    #[test]
    fn relabels_busiest_first_and_restores() {
        let x = Interactions::from_triples(
            3,
            4,
            [
                (0, 3, 1.0),
                (1, 0, 2.0),
                (1, 3, 3.0),
                (2, 3, 4.0),
                (1, 2, 5.0),
            ],
            Duplicates::Max,
        )
        .unwrap();
        let order = Ordering::by_degree(&x);
        // User 1 has three items; item 3 has three users.
        assert_eq!(order.users, vec![1, 0, 2]);
        assert_eq!(order.items, vec![3, 0, 2, 1]);
        let (relabelled, transposed) = order.apply(&x).unwrap();
        assert_eq!(relabelled.transpose(), transposed);
        // New user 0 is old user 1: items 0, 2, 3 are now 1, 2, 0.
        assert_eq!(
            relabelled.row(0),
            (&[0u32, 1, 2][..], &[3.0f32, 2.0, 5.0][..])
        );
        for new_user in 0..3 {
            let old_user = order.user(new_user);
            let (items, weights) = relabelled.row(new_user as u32);
            let mut back: Vec<(u32, f32)> = items
                .iter()
                .zip(weights)
                .map(|(&i, &w)| (order.item(i as usize), w))
                .collect();
            back.sort_by_key(|p| p.0);
            let (old_items, old_weights) = x.row(old_user);
            let expected: Vec<(u32, f32)> = old_items
                .iter()
                .copied()
                .zip(old_weights.iter().copied())
                .collect();
            assert_eq!(back, expected);
        }

        let values: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let factors = Factors::from_row_major(3, 2, &values).unwrap();
        let restored = Ordering::restore(&order.users, &factors);
        // In place, following the permutation's cycles: the same result.
        let mut in_place = factors.clone();
        let mut item_values = Factors::from_row_major(4, 1, &[0.0, 1.0, 2.0, 3.0]).unwrap();
        order.restore_in_place(&mut in_place, &mut item_values);
        assert_eq!(in_place, restored);
        // New item row n held the value n and belongs to old item items[n].
        for (new, &old) in order.items.iter().enumerate() {
            assert_eq!(item_values.get(old as usize).unwrap(), &[new as f32][..]);
        }
        // Old user 1 was new row 0.
        assert_eq!(restored.get(1).unwrap(), factors.get(0).unwrap());
        assert_eq!(restored.get(0).unwrap(), factors.get(1).unwrap());
        assert_eq!(restored.get(2).unwrap(), factors.get(2).unwrap());
    }
}
