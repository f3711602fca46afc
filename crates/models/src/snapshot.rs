//! Saving a trained model to one file and loading it back.
//!
//! A snapshot is a single [safetensors](https://huggingface.co/docs/safetensors)
//! file: the model's matrices as named little-endian tensors, plus a JSON
//! [`SnapshotHeader`] in the file's metadata under the key `tephra` (format
//! version, the [`ModelSpec`], item count, creation time, a checksum of the
//! tensor bytes and free-form notes). One file means a snapshot is swapped
//! atomically: it is written to a temporary sibling and renamed into place.
//!
//! Tensor names, per model (a blend's part `k` prefixes its own names with
//! `parts.k.`): `weights` (EASE, EASE + sequential: n × n, f32), `counts`
//! (popularity: n, f32), `user_factors` / `item_factors` (iALS: rows × factors,
//! f32), `item_factors` / `item_bias` (f32) / `item_counts` (u32) (BPR),
//! `indptr` (u64) / `indices` (u32) / `values` (f32) (item-kNN, RP3beta:
//! the sparse CSR neighbour matrix).
//!
//! Loading never panics on a bad file: a missing file, a damaged one (wrong
//! checksum, truncated tensors), a version this build does not know, or tensors
//! that do not fit the header all come back as [`ModelError::Snapshot`] or
//! [`ModelError::Shape`].

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use tephra_core::Timestamp;

use crate::blend::Blend;
use crate::bpr::Bpr;
use crate::ease::Ease;
use crate::error::ModelError;
use crate::ials::{Factors, IalsModel};
use crate::itemknn::ItemKnn;
use crate::most_popular::MostPopular;
use crate::recommender::Recommender;
use crate::registry::{Model, ModelSpec, TrainedModel};
use crate::rp3beta::Rp3Beta;
use crate::seq_ease::SeqEase;
use crate::similarity::SparseSimilarity;

/// The snapshot format this build writes. Every earlier version stays
/// loadable; a later one is refused with a clear message.
pub const FORMAT_VERSION: u32 = 1;

/// Metadata key holding the JSON header.
const HEADER_KEY: &str = "tephra";

/// What a snapshot says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// Format version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The spec the model was trained from.
    pub spec: ModelSpec,
    /// Items the model scores.
    pub n_items: usize,
    /// When the snapshot was written.
    pub created_at: Timestamp,
    /// `fnv1a64:` + 16 hex digits over every tensor's name, shape and bytes
    /// (sorted by name): detects a damaged file, not tampering.
    pub checksum: String,
    /// Anything the caller wants to keep with the model (holdout metrics, the
    /// history weighting it is served with, the data it was trained on).
    #[serde(default)]
    pub notes: BTreeMap<String, serde_json::Value>,
}

/// A tensor about to be written.
struct Tensor<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Cow<'a, [u8]>,
}

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> Tensor<'_> {
    let bytes = if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    };
    Tensor {
        dtype: Dtype::F32,
        shape,
        bytes,
    }
}

fn u32_tensor(values: &[u32]) -> Tensor<'_> {
    let bytes = if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    };
    Tensor {
        dtype: Dtype::U32,
        shape: vec![values.len()],
        bytes,
    }
}

fn u64_tensor(values: &[usize]) -> Tensor<'static> {
    Tensor {
        dtype: Dtype::U64,
        shape: vec![values.len()],
        bytes: Cow::Owned(
            values
                .iter()
                .flat_map(|&v| (v as u64).to_le_bytes())
                .collect(),
        ),
    }
}

/// Collects the tensors of `model` under `prefix`.
fn collect<'a>(
    model: &'a TrainedModel,
    prefix: &str,
    out: &mut BTreeMap<String, Tensor<'a>>,
) -> Result<(), ModelError> {
    let n = model.n_items();
    let name = |suffix: &str| format!("{prefix}{suffix}");
    let sparse = |s: &'a SparseSimilarity, out: &mut BTreeMap<String, Tensor<'a>>| {
        out.insert(name("indptr"), u64_tensor(s.indptr()));
        out.insert(name("indices"), u32_tensor(s.indices()));
        out.insert(
            name("values"),
            f32_tensor(vec![s.values().len()], s.values()),
        );
    };
    match model.model() {
        Model::Ease(m) => {
            out.insert(name("weights"), f32_tensor(vec![n, n], m.weights()));
        }
        Model::SeqEase(m) => {
            out.insert(name("weights"), f32_tensor(vec![n, n], m.weights()));
        }
        Model::Popularity(m) => {
            out.insert(name("counts"), f32_tensor(vec![n], m.counts()));
        }
        Model::Ials(m) => {
            for (key, factors) in [
                ("user_factors", m.user_factors()),
                ("item_factors", m.item_factors()),
            ] {
                let values = factors.to_row_major();
                let shape = vec![factors.n_rows(), factors.dim()];
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                out.insert(
                    name(key),
                    Tensor {
                        dtype: Dtype::F32,
                        shape,
                        bytes: Cow::Owned(bytes),
                    },
                );
            }
        }
        Model::Bpr(m) => {
            out.insert(
                name("item_factors"),
                f32_tensor(vec![n, m.factors()], m.item_factors()),
            );
            out.insert(name("item_bias"), f32_tensor(vec![n], m.item_bias()));
            out.insert(name("item_counts"), u32_tensor(m.item_counts()));
        }
        Model::ItemKnn(m) => sparse(m.similarity(), out),
        Model::Rp3Beta(m) => sparse(m.weights(), out),
        Model::Blend(b) => {
            for (k, (part, _)) in b.parts().iter().enumerate() {
                collect(part, &format!("{prefix}parts.{k}."), out)?;
            }
        }
    }
    Ok(())
}

/// 64-bit FNV-1a over 8-byte words (fast enough for gigabyte matrices).
struct Checksum(u64);

impl Checksum {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.0 = (self.0 ^ u64::from_le_bytes(w)).wrapping_mul(Self::PRIME);
        }
        for &b in words.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        // The length, so that trailing zeros are not invisible.
        self.0 = (self.0 ^ bytes.len() as u64).wrapping_mul(Self::PRIME);
    }

    fn tensor(&mut self, name: &str, shape: &[usize], bytes: &[u8]) {
        self.update(name.as_bytes());
        for &d in shape {
            self.update(&(d as u64).to_le_bytes());
        }
        self.update(bytes);
    }

    fn finish(&self) -> String {
        format!("fnv1a64:{:016x}", self.0)
    }
}

/// Writes `model` to `path` (replacing it atomically) and returns the header
/// written.
pub fn save(model: &TrainedModel, path: &Path) -> Result<SnapshotHeader, ModelError> {
    save_with_notes(model, BTreeMap::new(), path)
}

/// Like [`save`], keeping `notes` in the header (e.g. holdout metrics).
pub fn save_with_notes(
    model: &TrainedModel,
    notes: BTreeMap<String, serde_json::Value>,
    path: &Path,
) -> Result<SnapshotHeader, ModelError> {
    let failed = |message: String| ModelError::Snapshot {
        path: path.display().to_string(),
        message,
    };
    let mut tensors = BTreeMap::new();
    collect(model, "", &mut tensors)?;
    let mut checksum = Checksum::new();
    for (name, t) in &tensors {
        checksum.tensor(name, &t.shape, &t.bytes);
    }
    let header = SnapshotHeader {
        format_version: FORMAT_VERSION,
        spec: model.spec().clone(),
        n_items: model.n_items(),
        created_at: Timestamp::now(),
        checksum: checksum.finish(),
        notes,
    };
    let json = serde_json::to_string(&header)
        .map_err(|e| failed(format!("cannot encode the header: {e}")))?;
    let views = tensors
        .iter()
        .map(|(name, t)| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| failed(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([(HEADER_KEY.to_string(), json)]);
    // Written beside the target and renamed over it, so a reader (or a crash)
    // sees either the old snapshot or the new one, never half of one.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let written = safetensors::serialize_to_file(views, Some(metadata), &temporary)
        .map_err(|e| failed(format!("cannot write: {e}")))
        .and_then(|()| {
            std::fs::File::open(&temporary)
                .and_then(|f| f.sync_all())
                .map_err(|e| failed(format!("cannot flush: {e}")))
        })
        .and_then(|()| {
            std::fs::rename(&temporary, path)
                .map_err(|e| failed(format!("cannot move into place: {e}")))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    Ok(header)
}

/// Reads only the header of the snapshot at `path` (still checks the version).
pub fn read_header(path: &Path) -> Result<SnapshotHeader, ModelError> {
    let bytes = read(path)?;
    let (header, _) = parse(path, &bytes)?;
    Ok(header)
}

/// Loads the snapshot at `path`: the model and its header.
pub fn load(path: &Path) -> Result<(TrainedModel, SnapshotHeader), ModelError> {
    let bytes = read(path)?;
    load_bytes(path, &bytes)
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| ModelError::Snapshot {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

/// Parses and checks a snapshot held in memory (`path` only names it in errors).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<(TrainedModel, SnapshotHeader), ModelError> {
    let (header, tensors) = parse(path, bytes)?;
    let failed = |message: String| ModelError::Snapshot {
        path: path.display().to_string(),
        message,
    };
    let mut checksum = Checksum::new();
    let mut names = tensors.names();
    names.sort_unstable();
    for name in names {
        let view = tensors
            .tensor(name)
            .map_err(|e| failed(format!("tensor {name}: {e}")))?;
        checksum.tensor(name, view.shape(), view.data());
    }
    if checksum.finish() != header.checksum {
        return Err(failed(format!(
            "the file is damaged: checksum {} does not match the header's {}",
            checksum.finish(),
            header.checksum
        )));
    }
    let reader = Reader {
        tensors: &tensors,
        path,
    };
    let model = reader.model(&header.spec, header.n_items, "")?;
    if model.n_items() != header.n_items {
        return Err(failed(format!(
            "the model scores {} items but the header says {}",
            model.n_items(),
            header.n_items
        )));
    }
    Ok((model, header))
}

fn parse<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SnapshotHeader, SafeTensors<'a>), ModelError> {
    let failed = |message: String| ModelError::Snapshot {
        path: path.display().to_string(),
        message,
    };
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
        failed(format!(
            "not a readable snapshot file (damaged or truncated?): {e}"
        ))
    })?;
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| failed(format!("not a readable snapshot file: {e}")))?;
    let Some(json) = metadata.metadata().as_ref().and_then(|m| m.get(HEADER_KEY)) else {
        return Err(failed(
            "a safetensors file without a Tephra header: not a model snapshot".into(),
        ));
    };
    let raw: serde_json::Value =
        serde_json::from_str(json).map_err(|e| failed(format!("damaged header: {e}")))?;
    let version = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v >= 1 && v <= u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(failed(format!(
                "format version {v} is not supported by this build (it reads versions 1 to \
                 {FORMAT_VERSION}); upgrade Tephra or retrain the model"
            )))
        }
        None => return Err(failed("the header has no format version".into())),
    }
    let header: SnapshotHeader =
        serde_json::from_value(raw).map_err(|e| failed(format!("damaged header: {e}")))?;
    Ok((header, tensors))
}

/// Rebuilds models from the tensors of one file.
struct Reader<'a, 'data> {
    tensors: &'a SafeTensors<'data>,
    path: &'a Path,
}

impl Reader<'_, '_> {
    fn failed(&self, message: String) -> ModelError {
        ModelError::Snapshot {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// The tensor `name` with dtype `dtype` and `shape` (any shape when `None`).
    fn view(
        &self,
        name: &str,
        dtype: Dtype,
        shape: Option<&[usize]>,
    ) -> Result<TensorView<'_>, ModelError> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| self.failed(format!("tensor {name} is missing")))?;
        if view.dtype() != dtype {
            return Err(self.failed(format!(
                "tensor {name} is {:?}, expected {dtype:?}",
                view.dtype()
            )));
        }
        if let Some(shape) = shape {
            if view.shape() != shape {
                return Err(self.failed(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    view.shape()
                )));
            }
        }
        Ok(view)
    }

    fn f32s(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let view = self.view(name, Dtype::F32, shape)?;
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((view.shape().to_vec(), values))
    }

    fn sparse(&self, prefix: &str, n: usize) -> Result<SparseSimilarity, ModelError> {
        let indptr = self
            .view(&format!("{prefix}indptr"), Dtype::U64, None)?
            .data()
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                usize::try_from(u64::from_le_bytes(w))
                    .map_err(|_| self.failed("an index does not fit this machine".into()))
            })
            .collect::<Result<Vec<usize>, _>>()?;
        let indices = self
            .view(&format!("{prefix}indices"), Dtype::U32, None)?
            .data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (_, values) = self.f32s(&format!("{prefix}values"), None)?;
        SparseSimilarity::from_csr(n, indptr, indices, values)
    }

    fn model(&self, spec: &ModelSpec, n: usize, prefix: &str) -> Result<TrainedModel, ModelError> {
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let square = n
            .checked_mul(n)
            .map(|_| [n, n])
            .ok_or_else(|| self.failed(format!("{n} items is not a plausible catalogue")))?;
        let model = match spec {
            ModelSpec::Ease(_) => {
                let (_, w) = self.f32s(&name("weights"), Some(&square))?;
                Model::Ease(Ease::from_weights(n, w)?)
            }
            ModelSpec::SeqEase(_) => {
                let (_, w) = self.f32s(&name("weights"), Some(&square))?;
                Model::SeqEase(SeqEase::from_weights(n, w)?)
            }
            ModelSpec::Popularity(_) => {
                let (_, counts) = self.f32s(&name("counts"), Some(&[n]))?;
                Model::Popularity(MostPopular::from_counts(counts)?)
            }
            ModelSpec::Ials(config) => {
                let factors = |key: &str| -> Result<Factors, ModelError> {
                    let (shape, values) = self.f32s(&name(key), None)?;
                    let [rows, dim] = shape[..] else {
                        return Err(self.failed(format!("tensor {prefix}{key} is not a matrix")));
                    };
                    Factors::from_row_major(rows, dim, &values)
                };
                let items = factors("item_factors")?;
                if items.n_rows() != n {
                    return Err(
                        self.failed(format!("{} item factors for {n} items", items.n_rows()))
                    );
                }
                Model::Ials(IalsModel::from_factors(
                    config,
                    factors("user_factors")?,
                    items,
                )?)
            }
            ModelSpec::Bpr(config) => {
                let (_, factors) = self.f32s(&name("item_factors"), Some(&[n, config.factors]))?;
                let (_, bias) = self.f32s(&name("item_bias"), Some(&[n]))?;
                let counts = self
                    .view(&name("item_counts"), Dtype::U32, Some(&[n]))?
                    .data()
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Model::Bpr(Bpr::from_parts(*config, factors, bias, counts)?)
            }
            ModelSpec::ItemKnn(_) => {
                Model::ItemKnn(ItemKnn::from_similarity(self.sparse(prefix, n)?))
            }
            ModelSpec::Rp3Beta(_) => Model::Rp3Beta(Rp3Beta::from_weights(self.sparse(prefix, n)?)),
            ModelSpec::Blend(blend) => {
                let parts = blend
                    .parts
                    .iter()
                    .enumerate()
                    .map(|(k, part)| {
                        let model = self.model(&part.spec, n, &format!("{prefix}parts.{k}."))?;
                        Ok((model, part.weight))
                    })
                    .collect::<Result<Vec<_>, ModelError>>()?;
                Model::Blend(Blend::new(parts, blend.normalization)?)
            }
        };
        Ok(TrainedModel::new(spec.clone(), model))
    }
}
