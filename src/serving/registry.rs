//! The models a server serves, by name, each swappable by a reload without
//! dropping requests: a request takes the model that is current when it
//! starts and finishes on it; the next request gets the reloaded one.

use super::batcher::{BatchConfig, Batcher};
use super::{Observer, ServeError};
use crate::classifier::Classifier;
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One loaded model: the classifier, its fingerprint and its batch queue.
pub struct ServedModel {
    /// The name requests choose it by.
    pub name: String,
    /// The loaded classifier (encoder, head, card).
    pub classifier: Arc<Classifier>,
    /// 16 hex digits of SHA-256 over the folder's files ([`fingerprint`]).
    pub fingerprint: String,
    /// When this copy was loaded.
    pub loaded_at: SystemTime,
    pub(super) batcher: Batcher,
}

/// The files of a model folder whose bytes make its fingerprint.
pub const FINGERPRINT_FILES: [&str; 5] = [
    "graft.json",
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "pytorch_model.bin",
];

/// A model folder's fingerprint: the first 16 hex digits of SHA-256 over
/// the names and bytes of [`FINGERPRINT_FILES`] that exist. Retraining into
/// the same folder changes it, so cached answers of the old model are never
/// served for the new one.
///
/// # Errors
/// The I/O error of a file that exists but cannot be read.
pub fn fingerprint(dir: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    for name in FINGERPRINT_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        let mut file = std::fs::File::open(&path)?;
        let mut len = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            len += n as u64;
            h.update(&buf[..n]);
        }
        h.update(len.to_be_bytes());
    }
    let digest = h.finalize();
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// Size and modification time of each of [`FINGERPRINT_FILES`] (absent: `None`).
fn stamp(dir: &Path) -> Vec<Option<(u64, Option<SystemTime>)>> {
    FINGERPRINT_FILES
        .iter()
        .map(|name| {
            let m = std::fs::metadata(dir.join(name)).ok()?;
            Some((m.len(), m.modified().ok()))
        })
        .collect()
}

struct Slot {
    name: String,
    dir: PathBuf,
    current: ArcSwap<ServedModel>,
}

/// Every served model, in the order given; the first is the default.
pub struct ModelRegistry {
    slots: Vec<Slot>,
    batch: BatchConfig,
    observer: Arc<dyn Observer>,
    /// Serialises reloads (two reloads of one model would load it twice).
    reloading: std::sync::Mutex<()>,
}

impl ModelRegistry {
    /// Loads every `(name, folder)` (slow: seconds per model).
    ///
    /// # Errors
    /// [`ServeError::Model`] naming the model that failed to load;
    /// [`ServeError::BadRequest`] for a repeated or malformed name.
    pub fn load(
        models: &[(String, PathBuf)],
        batch: BatchConfig,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, ServeError> {
        let mut slots: Vec<Slot> = Vec::new();
        for (name, dir) in models {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(ServeError::BadRequest(format!(
                    "model name {name:?}: use letters, digits, '-', '_' or '.'"
                )));
            }
            if slots.iter().any(|s| &s.name == name) {
                return Err(ServeError::BadRequest(format!(
                    "model name {name:?} is given twice"
                )));
            }
            let model = load_model(name, dir, batch, observer.clone())?;
            slots.push(Slot {
                name: name.clone(),
                dir: dir.clone(),
                current: ArcSwap::from_pointee(model),
            });
        }
        Ok(Self {
            slots,
            batch,
            observer,
            reloading: std::sync::Mutex::new(()),
        })
    }

    /// The model called `name`, or the default one (the first) for `None`.
    ///
    /// # Errors
    /// [`ServeError::UnknownModel`]; [`ServeError::NoModel`] when none is served.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<ServedModel>, ServeError> {
        let slot =
            match name {
                Some(n) => self.slots.iter().find(|s| s.name == n).ok_or_else(|| {
                    ServeError::UnknownModel {
                        name: n.to_owned(),
                        known: self.names(),
                    }
                })?,
                None => self.slots.first().ok_or(ServeError::NoModel)?,
            };
        Ok(slot.current.load_full())
    }

    /// The names, default first.
    pub fn names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// Every current model, default first.
    pub fn all(&self) -> Vec<(PathBuf, Arc<ServedModel>)> {
        self.slots
            .iter()
            .map(|s| (s.dir.clone(), s.current.load_full()))
            .collect()
    }

    /// Loads `name`'s folder again and swaps it in. Requests already running
    /// finish on the old copy; its worker stops once they have. Blocking
    /// (seconds): call it off the async runtime.
    ///
    /// Returns the old and the new model.
    ///
    /// # Errors
    /// [`ServeError::UnknownModel`]; [`ServeError::Model`] when the folder no
    /// longer loads (the old copy keeps serving).
    pub fn reload(&self, name: &str) -> Result<(Arc<ServedModel>, Arc<ServedModel>), ServeError> {
        let _guard = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let slot =
            self.slots
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| ServeError::UnknownModel {
                    name: name.to_owned(),
                    known: self.names(),
                })?;
        let fresh = Arc::new(load_model(
            name,
            &slot.dir,
            self.batch,
            self.observer.clone(),
        )?);
        let old = slot.current.swap(fresh.clone());
        Ok((old, fresh))
    }
}

fn load_model(
    name: &str,
    dir: &Path,
    batch: BatchConfig,
    observer: Arc<dyn Observer>,
) -> Result<ServedModel, ServeError> {
    let model_error = |message: String| ServeError::Model {
        name: name.to_owned(),
        dir: dir.to_path_buf(),
        message,
    };
    // Training replaces a folder as a whole. The files' sizes and times,
    // equal before the hash and after the load, prove both read one version
    // (hashing twice would read the weights twice).
    let mut attempts = 0;
    let (fingerprint, classifier) = loop {
        let before = stamp(dir);
        let hash = fingerprint(dir).map_err(|e| model_error(e.to_string()))?;
        let classifier = Classifier::load(dir).map_err(|e| model_error(e.to_string()))?;
        attempts += 1;
        if stamp(dir) == before {
            break (hash, Arc::new(classifier));
        }
        if attempts == 3 {
            // Which version was loaded is unknown: answers cached under
            // either fingerprint could be wrong.
            return Err(model_error(
                "the folder kept changing while it was loaded; retry once it is written".into(),
            ));
        }
    };
    let batcher = Batcher::start(name, classifier.clone(), batch, observer);
    Ok(ServedModel {
        name: name.to_owned(),
        classifier,
        fingerprint,
        loaded_at: SystemTime::now(),
        batcher,
    })
}
