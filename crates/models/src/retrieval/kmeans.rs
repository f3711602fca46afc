//! Seeded Lloyd k-means for the IVF partition: trained on a sample, then every
//! point assigned in parallel.
//!
//! Deterministic for a seed whatever the number of threads: the sample, the
//! initial centroids and the re-seeding of empty clusters come from one
//! SplitMix64 stream, assignments break ties by the lower centroid, and the
//! means are summed sequentially in f64.

use rayon::prelude::*;

use super::kernel::{dots, Lane};

/// Points trained on: enough for a few dozen per centroid at a million items,
/// small enough that the Lloyd iterations cost less than the final assignment.
pub(crate) const SAMPLE: usize = 100_000;

/// Lloyd iterations on the sample. The partition only has to be good enough
/// for probing; later iterations move few points.
pub(crate) const ITERATIONS: usize = 8;

/// Centroids scored per pass over a batch of points: a block small enough to
/// stay in L1/L2 while every point of the batch is scored against it.
const CENTROID_BLOCK: usize = 128;

/// Points per parallel task.
const POINTS_PER_TASK: usize = 256;

/// SplitMix64: a cheap, well-mixed step of a 64-bit state.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform index below `n` (n > 0).
fn below(state: &mut u64, n: usize) -> usize {
    ((u128::from(splitmix(state)) * n as u128) >> 64) as usize
}

/// The result of clustering: `lists × lanes` centroids and, for every point,
/// the index of its centroid.
pub(crate) struct Clustering {
    pub(crate) centroids: Vec<Lane>,
    pub(crate) assignment: Vec<u32>,
}

/// Clusters `n` points of `lanes` lanes each into `lists` clusters (1 ≤ lists
/// ≤ n). `point(i, out)` writes point `i` into `out` (`lanes` lanes).
pub(crate) fn cluster(
    n: usize,
    lanes: usize,
    lists: usize,
    seed: u64,
    point: &(dyn Fn(usize, &mut [Lane]) + Sync),
) -> Clustering {
    debug_assert!(lists >= 1 && lists <= n);
    let mut state = seed ^ 0x6b6d_6561_6e73;
    // The sample: a seeded partial shuffle, kept in index order for locality.
    let mut sample: Vec<u32> = (0..n as u32).collect();
    let size = n.min(SAMPLE.max(lists));
    for i in 0..size {
        let j = i + below(&mut state, n - i);
        sample.swap(i, j);
    }
    sample.truncate(size);
    // The first `lists` sampled points (in shuffled order) start as centroids.
    let mut centroids = vec![Lane::default(); lists * lanes];
    for (c, &i) in centroids.chunks_exact_mut(lanes).zip(&sample) {
        point(i as usize, c);
    }
    sample.sort_unstable();
    let mut points = vec![Lane::default(); size * lanes];
    points
        .par_chunks_mut(lanes)
        .zip(sample.par_iter())
        .for_each(|(out, &i)| point(i as usize, out));

    for _ in 0..ITERATIONS {
        let assignment = assign_all(&points, lanes, &centroids);
        let mut sums = vec![0f64; lists * lanes * 8];
        let mut counts = vec![0usize; lists];
        for (p, &c) in points.chunks_exact(lanes).zip(&assignment) {
            let c = c as usize;
            counts[c] += 1;
            let sum = &mut sums[c * lanes * 8..(c + 1) * lanes * 8];
            for (s, &x) in sum.iter_mut().zip(p.iter().flat_map(|l| l.0.iter())) {
                *s += f64::from(x);
            }
        }
        for (c, (centroid, &count)) in centroids.chunks_exact_mut(lanes).zip(&counts).enumerate() {
            if count == 0 {
                // An empty cluster restarts at a random sampled point.
                let i = below(&mut state, size);
                centroid.copy_from_slice(&points[i * lanes..(i + 1) * lanes]);
                continue;
            }
            let sum = &sums[c * lanes * 8..(c + 1) * lanes * 8];
            for (k, lane) in centroid.iter_mut().enumerate() {
                lane.0 = std::array::from_fn(|j| (sum[k * 8 + j] / count as f64) as f32);
            }
        }
    }

    let half_norms = half_norms(&centroids, lanes);
    let assignment: Vec<u32> = (0..n)
        .into_par_iter()
        .step_by(POINTS_PER_TASK)
        .flat_map_iter(|start| {
            let m = POINTS_PER_TASK.min(n - start);
            let mut batch = vec![Lane::default(); m * lanes];
            for (r, out) in batch.chunks_exact_mut(lanes).enumerate() {
                point(start + r, out);
            }
            nearest(&batch, lanes, &centroids, &half_norms)
        })
        .collect();
    Clustering {
        centroids,
        assignment,
    }
}

/// ½‖c‖² per centroid: the nearest centroid maximizes x·c − ½‖c‖².
fn half_norms(centroids: &[Lane], lanes: usize) -> Vec<f32> {
    centroids
        .chunks_exact(lanes)
        .map(|c| 0.5 * c.iter().flat_map(|l| l.0).map(|x| x * x).sum::<f32>())
        .collect()
}

/// The nearest centroid of every point of `points`, in parallel.
fn assign_all(points: &[Lane], lanes: usize, centroids: &[Lane]) -> Vec<u32> {
    let half_norms = half_norms(centroids, lanes);
    points
        .par_chunks(POINTS_PER_TASK * lanes)
        .flat_map_iter(|batch| nearest(batch, lanes, centroids, &half_norms))
        .collect()
}

/// The nearest centroid (Euclidean; ties to the lower index) of each point of
/// `batch`, scoring the batch against one cache-sized block of centroids at a
/// time.
fn nearest(batch: &[Lane], lanes: usize, centroids: &[Lane], half_norms: &[f32]) -> Vec<u32> {
    let m = batch.len() / lanes;
    let lists = half_norms.len();
    let mut best = vec![(f32::NEG_INFINITY, 0u32); m];
    let mut scores = [0f32; CENTROID_BLOCK];
    for start in (0..lists).step_by(CENTROID_BLOCK) {
        let count = CENTROID_BLOCK.min(lists - start);
        let block = &centroids[start * lanes..(start + count) * lanes];
        let half = &half_norms[start..start + count];
        for (p, best) in batch.chunks_exact(lanes).zip(&mut best) {
            dots(block, lanes, p, &mut scores[..count]);
            for (c, (&s, &h)) in scores[..count].iter().zip(half).enumerate() {
                let s = s - h;
                if s > best.0 {
                    *best = (s, (start + c) as u32);
                }
            }
        }
    }
    best.into_iter().map(|(_, c)| c).collect()
}
