//! Integration tests of the evaluation crate: the whole path from a log file to
//! metrics, on a hand-made data set with known answers and, when it is present
//! in the ignored cache folder, on MovieLens-100K against the reference figures.

mod movielens;
mod tiny;
