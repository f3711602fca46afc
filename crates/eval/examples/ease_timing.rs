//! Times EASE^R training on a random binary matrix: `ease_timing ITEMS [USERS] [PER_USER]`.

use std::time::Instant;

use tephra_core::{Duplicates, Interactions};
use tephra_models::ease::{Ease, EaseConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |k: usize, default: usize| {
        std::env::args()
            .nth(k)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (n_items, n_users, per_user) = (arg(1, 5000), arg(2, 50_000), arg(3, 20));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut triples = Vec::with_capacity(n_users * per_user);
    for u in 0..n_users as u32 {
        for _ in 0..per_user {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Skewed popularity: the square of a uniform draw favours low indices.
            let r = (state >> 11) as f64 / (1u64 << 53) as f64;
            triples.push((u, ((r * r) * n_items as f64) as u32, 1.0));
        }
    }
    let x = Interactions::from_triples(n_users, n_items, triples, Duplicates::Max)?;
    let started = Instant::now();
    let model = Ease::fit(
        &x,
        &EaseConfig {
            lambda: 500.0,
            max_items: n_items,
        },
    )?;
    println!(
        "items={n_items} nnz={} fit_s={:.2} b01={}",
        x.nnz(),
        started.elapsed().as_secs_f64(),
        model.weight(0, 1)
    );
    Ok(())
}
