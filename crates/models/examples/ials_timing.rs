//! Times iALS iterations on a random matrix with skewed popularity:
//! `ials_timing [USERS] [ITEMS] [PER_USER] [ITERATIONS] [FACTORS] [CG_STEPS] [auto|single|half]`
//! (defaults 200000 50000 35 5 64 2 auto). Prints wall and CPU seconds per
//! iteration; threads come from `RAYON_NUM_THREADS`.

use std::time::Instant;

use tephra_core::{Duplicates, Interactions};
use tephra_models::ials::{GatherPrecision, IalsConfig, IalsTrainer, Isa};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |k: usize, default: usize| {
        std::env::args()
            .nth(k)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (n_users, n_items, per_user) = (arg(1, 200_000), arg(2, 50_000), arg(3, 35));
    let (iterations, factors, cg_steps) = (arg(4, 5), arg(5, 64), arg(6, 2));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // Popularity ~ rank^-0.8, scattered over item indices by a fixed odd multiplier.
    let mut triples = Vec::with_capacity(n_users * per_user);
    for u in 0..n_users as u32 {
        let n = ((per_user as f64) * (0.2 + 1.6 * next())) as usize;
        for _ in 0..n {
            let rank = ((n_items as f64).powf(0.2 * next()) - 1.0).powf(5.0) as usize % n_items;
            let item = (rank.wrapping_mul(2_654_435_761) % n_items) as u32;
            triples.push((u, item, 1.0));
        }
    }
    let x = Interactions::from_triples(n_users, n_items, triples, Duplicates::Max)?;
    let gather_precision = match std::env::args().nth(7).as_deref() {
        Some("single") => GatherPrecision::Single,
        Some("half") => GatherPrecision::Half,
        _ => GatherPrecision::Auto,
    };
    let config = IalsConfig {
        factors,
        cg_steps,
        gather_precision,
        ..Default::default()
    };
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut trainer = IalsTrainer::new(&x, &config)?;
    println!(
        "users={n_users} items={n_items} nnz={} isa={} threads={} setup_s={:.2}",
        x.nnz(),
        Isa::detect().name(),
        rayon::current_num_threads(),
        started.elapsed().as_secs_f64()
    );
    let mut last_cpu = cpu_seconds();
    for _ in 0..iterations {
        let started = Instant::now();
        trainer.iterate();
        let now_cpu = cpu_seconds();
        println!(
            "iteration wall_s={:.3} cpu_s={:.2}",
            started.elapsed().as_secs_f64(),
            now_cpu - last_cpu
        );
        last_cpu = now_cpu;
    }
    let model = trainer.into_model();
    println!(
        "total cpu_s={:.2} first user factor {:?}",
        cpu_seconds() - cpu,
        model.user_vector(0).map(|v| v[0])
    );
    Ok(())
}

/// CPU seconds (user + system) of this process (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(end) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    let ticks = |k: usize| {
        fields
            .get(k)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}
