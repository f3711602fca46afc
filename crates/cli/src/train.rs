//! `tephra train`: one training run on the data directory, offline.
//!
//! Exactly the run `serve` makes in the background and `POST /v1/admin/train`
//! makes on demand (see `tephra_server::model_manager`): load the data
//! directory, train the configured model, judge it on a holdout against the
//! saved model, and save it when it is not worse. The next `tephra serve`
//! loads the saved model and answers `/v1/recommend` with it.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tephra_server::model_manager::{HoldoutMetrics, TrainOutcome};
use tephra_server::{AppState, Config};

use crate::cli::TrainArgs;
use crate::data_dir;

/// Runs `tephra train`.
pub async fn run(args: &TrainArgs, mut config: Config) -> anyhow::Result<()> {
    if let Some(model) = &args.model {
        config.training.model = model.clone();
    }
    if let Some(half_life) = args.recency_half_life {
        config.training.recency_half_life = half_life;
    }
    config.validate().map_err(|e| {
        anyhow::anyhow!("{}: {}", e.field.as_deref().unwrap_or("config"), e.message)
    })?;
    let store = data_dir::open_store(&config.data_dir)?;
    let spinner = spinner(&format!("loading {}", config.data_dir.display()));
    let state = AppState::open(config, store)
        .await
        .context("cannot load the data directory")?;
    spinner.set_message(format!(
        "training {} and judging it on a holdout",
        state.config().training.model
    ));
    let outcome = state.train_now().await;
    spinner.finish_and_clear();
    let outcome = outcome.map_err(|e| anyhow::anyhow!("training did not produce a model: {e}"))?;
    print!("{}", report(&outcome));
    if outcome.promoted {
        if let Some(path) = state.models().snapshot_path() {
            println!("saved to {}; `tephra serve` serves it", path.display());
        }
    }
    Ok(())
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// What a run did, as printed.
fn report(outcome: &TrainOutcome) -> String {
    let line = |name: &str, m: &HoldoutMetrics| {
        format!(
            "  {name:<9} NDCG@10 {:.4}  Recall@20 {:.4}  ({} users)\n",
            m.ndcg_at_10, m.recall_at_20, m.users
        )
    };
    let mut out = format!(
        "trained {} (history {}) on {} positive events in {:.1} s\n",
        outcome.candidate.spec,
        weighting_name(&outcome.candidate),
        outcome.n_events,
        outcome.elapsed_ms as f64 / 1000.0
    );
    out += "holdout (each user's latest events):\n";
    out += &line("candidate", &outcome.candidate_holdout);
    if let Some(current) = &outcome.current_holdout {
        out += &line("saved", current);
    }
    out += if outcome.promoted {
        "promoted: the candidate is not worse than the saved model\n"
    } else {
        "not promoted: the saved model is better on the holdout and stays\n"
    };
    out
}

fn weighting_name(recipe: &tephra_server::model_manager::ModelRecipe) -> String {
    match recipe.weighting {
        tephra_models::HistoryWeighting::Plain => "plain".to_owned(),
        tephra_models::HistoryWeighting::Recency { half_life } => {
            format!("recency, half-life {half_life} events")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tephra_server::model_manager::ModelRecipe;

    #[test]
    fn the_report_names_the_model_and_the_decision() {
        let m = HoldoutMetrics {
            users: 10,
            ndcg_at_10: 0.25,
            recall_at_20: 0.3,
        };
        let outcome = TrainOutcome {
            promoted: false,
            candidate: ModelRecipe::default(),
            candidate_holdout: m,
            current_holdout: Some(m),
            n_events: 100,
            elapsed_ms: 1500,
        };
        let text = report(&outcome);
        assert!(text.contains("trained seq_ease"), "{text}");
        assert!(text.contains("recency, half-life 7 events"), "{text}");
        assert!(text.contains("NDCG@10 0.2500"), "{text}");
        assert!(text.contains("saved "), "{text}");
        assert!(text.contains("not promoted"), "{text}");
    }
}
