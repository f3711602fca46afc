//! Item-kNN: items are similar when the same users interacted with them.
//!
//! Every item is the column x_i of the users × items matrix. Three measures:
//! - **cosine** with shrinkage h: s_ij = x_i·x_j / (‖x_i‖‖x_j‖ + h). The
//!   shrinkage pulls down similarities resting on few shared users;
//! - **Jaccard** on the sets of users: |U_i ∩ U_j| / |U_i ∪ U_j| (weights are
//!   ignored);
//! - **BM25**, as `implicit`'s `BM25Recommender`: every entry is re-weighted
//!   x_ui · (k1 + 1) / (k1 · L_i + x_ui) · idf_u, with L_i = 1 − b + b · |x_i| /
//!   mean_i |x_i| (|x_i| the item's weight sum) and idf_u = ln(items) − ln(1 +
//!   |I_u|), then s_ij is the plain dot product of the re-weighted columns.
//!   Heavy users count less (they interact with everything), very popular items
//!   are damped.
//!
//! Only the `K` strongest neighbours of each item are kept (the diagonal never),
//! computed sparsely by [`top_k_product`]; a history scores Σ_i w_i · s_i·.
//! Training cost is Σ_u |I_u|² multiply-adds in parallel; the model is
//! items · K entries.

use tephra_core::Interactions;

use crate::error::ModelError;
use crate::recommender::{History, Recommender};
use crate::similarity::{top_k_product, SparseSimilarity};

const NAME: &str = "itemknn";

/// How two items' user columns are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KnnSimilarity {
    /// Cosine of the weight columns, shrunk by `shrinkage` (≥ 0; 0 is plain
    /// cosine, as `implicit`'s `CosineRecommender`).
    Cosine {
        /// Added to the norm product; tens on MovieLens-sized data.
        shrinkage: f32,
    },
    /// Shared users over all users of either item.
    Jaccard,
    /// Dot product of BM25-weighted columns (`implicit` uses k1 = 1.2, b = 0.75).
    Bm25 {
        /// Saturation of repeated interactions (≥ 0).
        k1: f32,
        /// Strength of the item-popularity normalization, in [0, 1].
        b: f32,
    },
}

/// Item-kNN hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemKnnConfig {
    /// The similarity measure.
    pub similarity: KnnSimilarity,
    /// Neighbours kept per item (K ≥ 1).
    pub neighbours: usize,
}

impl Default for ItemKnnConfig {
    /// Plain cosine with K = 100: the usual baseline.
    fn default() -> Self {
        Self {
            similarity: KnnSimilarity::Cosine { shrinkage: 0.0 },
            neighbours: 100,
        }
    }
}

impl ItemKnnConfig {
    fn check(&self) -> Result<(), ModelError> {
        let invalid = |message: String| {
            Err(ModelError::InvalidConfig {
                model: NAME,
                message,
            })
        };
        if self.neighbours == 0 {
            return invalid("neighbours must be at least 1".into());
        }
        match self.similarity {
            KnnSimilarity::Cosine { shrinkage } if !(shrinkage >= 0.0 && shrinkage.is_finite()) => {
                invalid(format!(
                    "shrinkage {shrinkage} must be a non-negative number"
                ))
            }
            KnnSimilarity::Bm25 { k1, .. } if !(k1 >= 0.0 && k1.is_finite()) => {
                invalid(format!("k1 {k1} must be a non-negative number"))
            }
            KnnSimilarity::Bm25 { b, .. } if !(0.0..=1.0).contains(&b) => {
                invalid(format!("b {b} must be between 0 and 1"))
            }
            _ => Ok(()),
        }
    }
}

/// A trained item-kNN model: the sparse top-K similarity matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemKnn {
    similarity: SparseSimilarity,
}

impl ItemKnn {
    /// Computes every item's `K` nearest neighbours from `x` (users × items;
    /// weights as given, usually 1.0).
    pub fn fit(x: &Interactions, config: &ItemKnnConfig) -> Result<Self, ModelError> {
        config.check()?;
        let k = config.neighbours;
        let similarity = match config.similarity {
            KnnSimilarity::Cosine { shrinkage } => {
                let xt = x.transpose();
                let norms: Vec<f32> = (0..xt.n_users() as u32)
                    .map(|i| xt.row(i).1.iter().map(|w| w * w).sum::<f32>().sqrt())
                    .collect();
                top_k_product(&xt, x, &norms, k, |dot, norm_i, norm_j| {
                    dot / (norm_i * norm_j + shrinkage)
                })?
            }
            KnnSimilarity::Jaccard => {
                let binary = reweight(x, |_, _, _| 1.0)?;
                let counts: Vec<f32> = x.column_counts().into_iter().map(|c| c as f32).collect();
                top_k_product(
                    &binary.transpose(),
                    &binary,
                    &counts,
                    k,
                    |shared, n_i, n_j| shared / (n_i + n_j - shared),
                )?
            }
            KnnSimilarity::Bm25 { k1, b } => {
                let weighted = bm25_weight(x, k1, b)?;
                let unused = vec![0.0; x.n_items()];
                top_k_product(&weighted.transpose(), &weighted, &unused, k, |dot, _, _| {
                    dot
                })?
            }
        };
        Ok(Self { similarity })
    }

    /// Wraps a similarity matrix computed elsewhere (e.g. loaded from a snapshot).
    pub fn from_similarity(similarity: SparseSimilarity) -> Self {
        Self { similarity }
    }

    /// The neighbour matrix: row `i` is what history item `i` adds to each item.
    pub fn similarity(&self) -> &SparseSimilarity {
        &self.similarity
    }
}

impl Recommender for ItemKnn {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.similarity.n_items()
    }

    /// Σ_i w_i · s_i· over the weighted history.
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        self.similarity.score_into(history, scores);
    }

    /// The item's stored neighbours, best first (at most K of them).
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        self.similarity.top_neighbours(item, n)
    }
}

/// A copy of `x` with every weight replaced by `f(user, item, weight)`.
///
/// Fails if `f` produced a non-finite weight.
pub(crate) fn reweight(
    x: &Interactions,
    f: impl Fn(u32, u32, f32) -> f32,
) -> Result<Interactions, ModelError> {
    let mut values = Vec::with_capacity(x.nnz());
    for u in 0..x.n_users() as u32 {
        let (items, weights) = x.row(u);
        values.extend(items.iter().zip(weights).map(|(&i, &w)| f(u, i, w)));
    }
    Interactions::from_csr(
        x.n_users(),
        x.n_items(),
        x.indptr().to_vec(),
        x.indices().to_vec(),
        values,
    )
    .map_err(|e| ModelError::InvalidConfig {
        model: NAME,
        message: format!("re-weighting the interactions failed: {}", e.message),
    })
}

/// `implicit`'s `bm25_weight` applied to the items × users view of `x`, returned
/// as users × items.
fn bm25_weight(x: &Interactions, k1: f32, b: f32) -> Result<Interactions, ModelError> {
    let n_items = x.n_items();
    let mut item_sums = vec![0f64; n_items];
    for (&i, &w) in x.indices().iter().zip(x.values()) {
        item_sums[i as usize] += f64::from(w);
    }
    let mean = item_sums.iter().sum::<f64>() / n_items.max(1) as f64;
    let length_norm: Vec<f32> = item_sums
        .iter()
        .map(|&s| {
            let ratio = if mean > 0.0 { s / mean } else { 0.0 };
            (1.0 - f64::from(b) + f64::from(b) * ratio) as f32
        })
        .collect();
    let ln_items = (n_items as f64).ln();
    let idf: Vec<f32> = (0..x.n_users() as u32)
        .map(|u| (ln_items - (x.row_nnz(u) as f64).ln_1p()) as f32)
        .collect();
    reweight(x, |u, i, w| {
        w * (k1 + 1.0) / (k1 * length_norm[i as usize] + w) * idf[u as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_core::Duplicates;

    fn matrix(n_users: usize, n_items: usize, cells: &[(u32, u32, f32)]) -> Interactions {
        Interactions::from_triples(n_users, n_items, cells.iter().copied(), Duplicates::Max)
            .unwrap()
    }

    /// Users {0,1}, {0,1,2}, {0}, {2}, {1,2} (binary).
    fn five_users() -> Interactions {
        matrix(
            5,
            4,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 1.0),
                (1, 1, 1.0),
                (1, 2, 1.0),
                (2, 0, 1.0),
                (3, 2, 1.0),
                (4, 1, 1.0),
                (4, 2, 1.0),
            ],
        )
    }

    fn fit(x: &Interactions, similarity: KnnSimilarity, neighbours: usize) -> ItemKnn {
        ItemKnn::fit(
            x,
            &ItemKnnConfig {
                similarity,
                neighbours,
            },
        )
        .unwrap()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn cosine_by_hand() {
        // Item 0: users {0,1,2}; item 1: {0,1,4}; item 2: {1,3,4}; item 3: nobody.
        // 0·1 = 2, 0·2 = 1, 1·2 = 2, every norm √3.
        let x = five_users();
        let knn = fit(&x, KnnSimilarity::Cosine { shrinkage: 0.0 }, 10);
        let s = knn.similarity();
        assert!(close(s.get(0, 1), 2.0 / 3.0) && close(s.get(1, 0), 2.0 / 3.0));
        assert!(close(s.get(0, 2), 1.0 / 3.0));
        assert!(close(s.get(1, 2), 2.0 / 3.0));
        assert_eq!(s.get(0, 0), 0.0);
        assert_eq!(s.row(3).0.len(), 0);
        // Shrinkage 1: 2 / (3 + 1).
        let shrunk = fit(&x, KnnSimilarity::Cosine { shrinkage: 1.0 }, 10);
        assert!(close(shrunk.similarity().get(0, 1), 0.5));
        // K = 1 keeps only the best neighbour; item 1 ties 0 and 2, the lower wins.
        let one = fit(&x, KnnSimilarity::Cosine { shrinkage: 0.0 }, 1);
        assert_eq!(one.similarity().row(1).0, &[0]);
        assert_eq!(one.similarity().nnz(), 3);
    }

    #[test]
    fn cosine_uses_weights() {
        // Item 0 = (1, 2), item 1 = (2, 0) over users 0 and 1: cos = 2 / (√5 · 2).
        let x = matrix(2, 2, &[(0, 0, 1.0), (1, 0, 2.0), (0, 1, 2.0)]);
        let knn = fit(&x, KnnSimilarity::Cosine { shrinkage: 0.0 }, 5);
        assert!(close(knn.similarity().get(0, 1), 1.0 / 5f32.sqrt()));
    }

    #[test]
    fn jaccard_by_hand() {
        // |{0,1,2} ∩ {0,1,4}| / |∪| = 2/4; items 0 and 2 share user 1 of 5.
        let x = five_users();
        let knn = fit(&x, KnnSimilarity::Jaccard, 10);
        let s = knn.similarity();
        assert!(close(s.get(0, 1), 0.5));
        assert!(close(s.get(0, 2), 0.2));
        assert!(close(s.get(2, 1), 0.5));
        // Weights are ignored.
        let weighted = matrix(2, 2, &[(0, 0, 5.0), (0, 1, 1.0), (1, 0, 3.0)]);
        assert!(close(
            fit(&weighted, KnnSimilarity::Jaccard, 10)
                .similarity()
                .get(0, 1),
            0.5
        ));
    }

    #[test]
    fn bm25_matches_the_formula() {
        // The five users over six items (3, 4 and 5 unused).
        let (indptr, indices) = (
            five_users().indptr().to_vec(),
            five_users().indices().to_vec(),
        );
        let x = Interactions::from_csr(5, 6, indptr, indices, vec![1.0; 9]).unwrap();
        let (k1, b) = (1.2f32, 0.75f32);
        let knn = fit(&x, KnnSimilarity::Bm25 { k1, b }, 10);
        // Item sums 3, 3, 3, 0, 0, 0 → mean 1.5; L = 0.25 + 0.75 · 3 / 1.5 = 1.75.
        // idf_u = ln 6 − ln(1 + |I_u|); items 0 and 1 share users 0 (2 items)
        // and 1 (3 items); items 0 and 2 share user 1.
        let tf = (k1 + 1.0) / (k1 * 1.75 + 1.0);
        let idf = |n: f32| 6f32.ln() - (1.0 + n).ln();
        let want01 = tf * tf * (idf(2.0).powi(2) + idf(3.0).powi(2));
        assert!((knn.similarity().get(0, 1) - want01).abs() < 1e-5);
        let want02 = tf * tf * idf(3.0).powi(2);
        assert!(want02 > 0.05);
        assert!((knn.similarity().get(0, 2) - want02).abs() < 1e-5);
    }

    #[test]
    fn scores_the_weighted_history() {
        let x = five_users();
        let knn = fit(&x, KnnSimilarity::Cosine { shrinkage: 0.0 }, 10);
        let mut scores = vec![7.0; 4];
        knn.score(&[(0, 1.0), (2, 0.5), (40, 1.0)], &mut scores);
        let s = knn.similarity();
        assert!(close(scores[1], s.get(0, 1) + 0.5 * s.get(2, 1)));
        assert!(close(scores[0], 0.5 * s.get(2, 0)));
        assert_eq!(scores[3], 0.0);
        assert_eq!(knn.similar_items(0, 1), vec![(1, s.get(0, 1))]);
        assert_eq!(knn.n_items(), 4);
        assert_eq!(knn.name(), "itemknn");
    }

    #[test]
    fn refuses_bad_configurations() {
        let x = five_users();
        for similarity in [
            KnnSimilarity::Cosine { shrinkage: -1.0 },
            KnnSimilarity::Cosine {
                shrinkage: f32::NAN,
            },
            KnnSimilarity::Bm25 { k1: -0.1, b: 0.5 },
            KnnSimilarity::Bm25 { k1: 1.2, b: 1.5 },
        ] {
            let config = ItemKnnConfig {
                similarity,
                neighbours: 10,
            };
            assert!(matches!(
                ItemKnn::fit(&x, &config),
                Err(ModelError::InvalidConfig { .. })
            ));
        }
        let zero = ItemKnnConfig {
            neighbours: 0,
            ..Default::default()
        };
        assert!(ItemKnn::fit(&x, &zero).is_err());
        let empty = ItemKnn::fit(&matrix(3, 0, &[]), &ItemKnnConfig::default()).unwrap();
        assert_eq!(empty.n_items(), 0);
    }
}
