//! Content similarity: BM25 over an item's title, text, tags and categories.
//!
//! The only signal a brand-new item has is what it says about itself, so this
//! index is updated item by item ([`ContentIndex::upsert`]) and answers at once:
//! no training run. Similar items of `i` are the items that score highest when
//! `i`'s own terms are the query, each term weighted by BM25 (Robertson's idf
//! and saturated, length-normalized term frequency).
//!
//! Tags and categories are whole terms (`tag:ev`, `category:cars`, never split
//! into words) and count [`LABEL_WEIGHT`] times, since an editor chose them.
//! Words are lower-cased runs of letters and digits, at least two characters,
//! without a short list of English stop words. A query keeps only its
//! [`MAX_QUERY_TERMS`] rarest terms, which bounds the cost of a request on a
//! large catalogue: common terms have long posting lists and say little.
//!
//! Statistics (document frequencies, average length) are kept exact under
//! every insert, update and removal, so scores never drift.

use std::collections::HashMap;

use crate::topk::TopK;

/// How many times a tag or category counts, relative to one word.
pub const LABEL_WEIGHT: f32 = 3.0;
/// The rarest terms of an item that form its query.
pub const MAX_QUERY_TERMS: usize = 32;

/// Words that carry no topic.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he",
    "her", "his", "how", "if", "in", "into", "is", "it", "its", "more", "most", "new", "no", "not",
    "of", "on", "one", "or", "our", "out", "over", "she", "so", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "to", "up", "was", "we", "were", "what",
    "when", "which", "who", "will", "with", "would", "you", "your",
];

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25 {
    /// Term-frequency saturation (1.2 is the usual choice).
    pub k1: f32,
    /// Length normalization, 0 (none) to 1 (full).
    pub b: f32,
}

impl Default for Bm25 {
    fn default() -> Self {
        Self { k1: 1.2, b: 0.75 }
    }
}

/// What an item says about itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemText<'a> {
    /// Title or headline.
    pub title: &'a str,
    /// Body text or description.
    pub text: &'a str,
    /// Free-form tags.
    pub tags: &'a [String],
    /// Categories.
    pub categories: &'a [String],
}

/// One indexed item: its terms with their (weighted) frequencies.
#[derive(Debug, Clone, Default)]
struct Document {
    terms: Vec<(u32, f32)>,
    length: f32,
}

/// An incrementally maintained BM25 index over item texts, keyed by dense item
/// index.
#[derive(Debug, Clone, Default)]
pub struct ContentIndex {
    params: Bm25,
    vocabulary: HashMap<String, u32>,
    /// Per term, the items containing it with the term's frequency there.
    postings: Vec<Vec<(u32, f32)>>,
    /// Per term, whether it is a tag or category label rather than a word.
    labels: Vec<bool>,
    /// Per item; `None` for items never indexed or removed.
    documents: Vec<Option<Document>>,
    n_documents: usize,
    total_length: f64,
}

impl ContentIndex {
    /// An empty index.
    pub fn new(params: Bm25) -> Self {
        Self {
            params,
            ..Self::default()
        }
    }

    /// Items indexed.
    pub fn len(&self) -> usize {
        self.n_documents
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.n_documents == 0
    }

    /// Whether `item` is indexed.
    pub fn contains(&self, item: u32) -> bool {
        matches!(self.documents.get(item as usize), Some(Some(_)))
    }

    /// Indexes `item` (replacing what it said before). An item with no terms is
    /// removed: it has nothing to be similar by.
    pub fn upsert(&mut self, item: u32, text: &ItemText<'_>) {
        self.remove(item);
        let mut counts: HashMap<u32, f32> = HashMap::new();
        for word in words(text.title).chain(words(text.text)) {
            *counts.entry(self.term_id(&word)).or_default() += 1.0;
        }
        for (prefix, labels) in [("tag:", text.tags), ("category:", text.categories)] {
            for label in labels {
                let term = format!("{prefix}{}", label.trim().to_lowercase());
                if term.len() > prefix.len() {
                    *counts.entry(self.term_id(&term)).or_default() += LABEL_WEIGHT;
                }
            }
        }
        if counts.is_empty() {
            return;
        }
        let mut terms: Vec<(u32, f32)> = counts.into_iter().collect();
        terms.sort_unstable_by_key(|&(t, _)| t);
        let length = terms.iter().map(|&(_, f)| f).sum::<f32>();
        for &(term, frequency) in &terms {
            self.postings[term as usize].push((item, frequency));
        }
        let slot = item as usize;
        if self.documents.len() <= slot {
            self.documents.resize(slot + 1, None);
        }
        self.documents[slot] = Some(Document { terms, length });
        self.n_documents += 1;
        self.total_length += f64::from(length);
    }

    /// Forgets `item` (deleted from the catalogue); nothing happens if it was
    /// not indexed.
    pub fn remove(&mut self, item: u32) {
        let Some(document) = self.documents.get_mut(item as usize).and_then(Option::take) else {
            return;
        };
        for &(term, _) in &document.terms {
            self.postings[term as usize].retain(|&(i, _)| i != item);
        }
        self.n_documents -= 1;
        self.total_length -= f64::from(document.length);
    }

    /// The `n` items most similar to `item` by content, best first, without
    /// `item` itself; empty when `item` is not indexed.
    pub fn similar(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        let Some(Some(document)) = self.documents.get(item as usize) else {
            return Vec::new();
        };
        let mut scores: HashMap<u32, f32> = HashMap::new();
        self.accumulate(&document.terms, |other, score| {
            if other != item {
                *scores.entry(other).or_default() += score;
            }
        });
        let mut top = TopK::new(n);
        for (other, score) in scores {
            top.push(other, f64::from(score));
        }
        top.into_sorted_vec()
            .into_iter()
            .map(|(i, s)| (i, s as f32))
            .collect()
    }

    /// Cosine similarity of two items' words (title and text; tags and
    /// categories do not count, or every item of a category would duplicate
    /// the others), each weighted by its frequency times its idf: 1 for the
    /// same text, 0 for no word in common, no words, or an item not indexed.
    /// What near-duplicate removal compares.
    pub fn cosine(&self, a: u32, b: u32) -> f32 {
        let (Some(Some(da)), Some(Some(db))) = (
            self.documents.get(a as usize),
            self.documents.get(b as usize),
        ) else {
            return 0.0;
        };
        let n = self.n_documents as f32;
        let weight = |term: u32, tf: f32| {
            if self.labels[term as usize] {
                return 0.0;
            }
            let df = self.postings[term as usize].len() as f32;
            tf * (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        };
        let norm = |d: &Document| {
            d.terms
                .iter()
                .map(|&(t, f)| weight(t, f).powi(2))
                .sum::<f32>()
                .sqrt()
        };
        let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
        while i < da.terms.len() && j < db.terms.len() {
            let ((ta, fa), (tb, fb)) = (da.terms[i], db.terms[j]);
            match ta.cmp(&tb) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += weight(ta, fa) * weight(tb, fb);
                    i += 1;
                    j += 1;
                }
            }
        }
        let denominator = norm(da) * norm(db);
        if denominator > 0.0 {
            (dot / denominator).min(1.0)
        } else {
            0.0
        }
    }

    /// Adds, for every indexed item, its BM25 score for the query formed by the
    /// items of `history` (each item's terms weighted by the history weight) to
    /// `scores` (indexed by item; items beyond its length are skipped). What a
    /// reader's recent items say scores the catalogue, new items included.
    pub fn score_history(&self, history: &[(u32, f32)], scores: &mut [f32]) {
        let mut query: HashMap<u32, f32> = HashMap::new();
        for &(item, weight) in history {
            if let Some(Some(document)) = self.documents.get(item as usize) {
                for &(term, frequency) in &document.terms {
                    *query.entry(term).or_default() += weight * frequency;
                }
            }
        }
        let query: Vec<(u32, f32)> = query.into_iter().collect();
        self.accumulate(&query, |other, score| {
            if let Some(s) = scores.get_mut(other as usize) {
                *s += score;
            }
        });
    }

    /// Calls `add(item, score)` for every posting of the query's rarest terms,
    /// with the BM25 contribution of that term, times the query weight.
    fn accumulate(&self, query: &[(u32, f32)], mut add: impl FnMut(u32, f32)) {
        if self.n_documents == 0 {
            return;
        }
        let n = self.n_documents as f32;
        let average_length = (self.total_length / self.n_documents as f64) as f32;
        let Bm25 { k1, b } = self.params;
        let mut terms: Vec<(u32, f32, f32)> = query
            .iter()
            .filter_map(|&(term, weight)| {
                let df = self.postings[term as usize].len() as f32;
                (df > 0.0 && weight > 0.0).then(|| {
                    // Robertson–Spärck Jones idf, kept positive for terms in
                    // more than half of the documents.
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    (term, weight, idf)
                })
            })
            .collect();
        // Rarest first (highest idf), ties by term id for determinism.
        terms.sort_unstable_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        terms.truncate(MAX_QUERY_TERMS);
        for (term, weight, idf) in terms {
            // Saturate the query side too, so a long history does not let one
            // frequent term drown the rest.
            let query_weight = weight * (k1 + 1.0) / (weight + k1);
            for &(item, tf) in &self.postings[term as usize] {
                let length = self.documents[item as usize]
                    .as_ref()
                    .map_or(average_length, |d| d.length);
                let norm = k1 * (1.0 - b + b * length / average_length.max(f32::EPSILON));
                add(item, query_weight * idf * tf * (k1 + 1.0) / (tf + norm));
            }
        }
    }

    fn term_id(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.vocabulary.get(term) {
            return id;
        }
        let id = self.postings.len() as u32;
        self.vocabulary.insert(term.to_owned(), id);
        self.postings.push(Vec::new());
        self.labels
            .push(term.starts_with("tag:") || term.starts_with("category:"));
        id
    }
}

/// Lower-cased words of `text`: runs of letters and digits, at least two
/// characters, stop words left out.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| STOP_WORDS.binary_search(&w.as_str()).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text<'a>(title: &'a str, tags: &'a [String]) -> ItemText<'a> {
        ItemText {
            title,
            tags,
            ..ItemText::default()
        }
    }

    fn index(titles: &[&str]) -> ContentIndex {
        let mut index = ContentIndex::new(Bm25::default());
        for (i, title) in titles.iter().enumerate() {
            index.upsert(i as u32, &text(title, &[]));
        }
        index
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn words_are_lower_cased_without_stop_words_and_single_letters() {
        let w: Vec<String> = words("The NEW battery of a Tesla-Model 3, in 2026!").collect();
        assert_eq!(w, ["battery", "tesla", "model", "2026"]);
    }

    #[test]
    fn the_textually_closest_item_comes_first() {
        let index = index(&[
            "Electric car battery prices fall",
            "Chip makers race to 2nm",
            "Battery breakthrough for electric cars",
            "Robots learn to fold laundry",
        ]);
        let similar = index.similar(0, 3);
        assert_eq!(similar[0].0, 2, "{similar:?}");
        assert!(similar.iter().all(|&(i, _)| i != 0));
        assert!(similar.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn cosine_is_one_for_equal_text_and_zero_for_disjoint_text() {
        let index = index(&[
            "Electric car battery prices fall",
            "Electric car battery prices fall",
            "Robots learn to fold laundry",
            "Electric car sales rise",
        ]);
        assert!((index.cosine(0, 1) - 1.0).abs() < 1e-5);
        assert_eq!(index.cosine(0, 2), 0.0);
        let partial = index.cosine(0, 3);
        assert!(partial > 0.0 && partial < 0.9, "{partial}");
        assert_eq!(index.cosine(0, 99), 0.0);
        // Labels alone make no duplicates.
        let mut labelled = ContentIndex::new(Bm25::default());
        let cats = ["x".to_owned()];
        for item in 0..2 {
            labelled.upsert(
                item,
                &ItemText {
                    categories: &cats,
                    ..ItemText::default()
                },
            );
        }
        assert_eq!(labelled.cosine(0, 1), 0.0);
    }

    #[test]
    fn a_new_item_is_similar_at_once_and_a_removed_one_is_gone() {
        let mut index = index(&["Chip makers race to 2nm", "Robots learn to fold laundry"]);
        assert!(index.similar(0, 5).is_empty());
        index.upsert(7, &text("New 2nm chip fabs announced", &[]));
        assert_eq!(index.similar(0, 5)[0].0, 7);
        assert_eq!(index.similar(7, 5)[0].0, 0);
        index.remove(7);
        assert!(index.similar(0, 5).is_empty());
        assert!(!index.contains(7));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn tags_and_categories_are_whole_terms() {
        let mut index = ContentIndex::new(Bm25::default());
        let ev = vec!["Electric Vehicles".to_owned()];
        index.upsert(0, &text("Quarterly results", &ev));
        index.upsert(1, &text("Quarterly results", &[]));
        index.upsert(2, &text("Something else", &ev));
        index.upsert(
            3,
            &ItemText {
                title: "vehicles",
                ..ItemText::default()
            },
        );
        let similar = index.similar(2, 5);
        assert_eq!(similar.len(), 1, "only the shared tag matches: {similar:?}");
        assert_eq!(similar[0].0, 0);
    }

    #[test]
    fn an_update_replaces_the_old_text() {
        let mut index = index(&["Chip makers race", "Robots fold laundry"]);
        index.upsert(0, &text("Robots everywhere", &[]));
        assert_eq!(index.similar(1, 5)[0].0, 0);
        index.upsert(0, &text("", &[]));
        assert!(!index.contains(0));
        assert!(index.similar(1, 5).is_empty());
    }

    #[test]
    fn a_history_scores_items_that_share_its_words() {
        let index = index(&[
            "Electric car battery",
            "Chip fab opens",
            "Battery for electric trucks",
            "Chip shortage ends",
        ]);
        let mut scores = vec![0.0; 4];
        index.score_history(&[(0, 1.0)], &mut scores);
        assert!(scores[2] > 0.0 && scores[1] == 0.0 && scores[3] == 0.0);
        let mut scores = vec![0.0; 4];
        index.score_history(&[(0, 0.1), (1, 1.0)], &mut scores);
        assert!(scores[3] > scores[2], "{scores:?}");
    }

    proptest! {
        #[test]
        fn statistics_stay_exact_under_any_sequence_of_changes(
            ops in proptest::collection::vec((0u32..8, proptest::option::of(0usize..4)), 0..40)
        ) {
            let titles = ["alpha beta", "beta gamma delta", "gamma", "delta epsilon alpha"];
            let mut index = ContentIndex::new(Bm25::default());
            let mut fresh_titles: Vec<Option<usize>> = vec![None; 8];
            for (item, title) in ops {
                match title {
                    Some(t) => index.upsert(item, &text(titles[t], &[])),
                    None => index.remove(item),
                }
                fresh_titles[item as usize] = title;
            }
            // The same index built from scratch answers identically.
            let mut fresh = ContentIndex::new(Bm25::default());
            for (item, title) in fresh_titles.iter().enumerate() {
                if let Some(t) = title {
                    fresh.upsert(item as u32, &text(titles[*t], &[]));
                }
            }
            prop_assert_eq!(index.len(), fresh.len());
            prop_assert!((index.total_length - fresh.total_length).abs() < 1e-6);
            for item in 0..8u32 {
                let (a, b) = (index.similar(item, 8), fresh.similar(item, 8));
                prop_assert_eq!(a.len(), b.len());
                for ((ia, sa), (ib, sb)) in a.iter().zip(&b) {
                    prop_assert!((sa - sb).abs() < 1e-4, "{} {} vs {} {}", ia, sa, ib, sb);
                }
                prop_assert!(a.iter().all(|&(i, _)| i != item && index.contains(i)));
            }
        }
    }
}
