//! Resumable training: the state of a fine-tuning or masked-LM
//! pre-training run after each epoch, and every `--save-steps` optimizer
//! steps inside one, in a folder of its own (`graft train
//! --checkpoint-dir`, `graft pretrain --checkpoint-dir`), so a run that was
//! stopped (a crash, a reboot, a time limit) goes on from its last saved
//! step instead of from the start, and ends with the model it would have
//! ended with had it never stopped (the same weights, bit for bit, on the
//! same machine).
//!
//! A state is every trained parameter's value, AdamW's two moments of
//! each, the best epoch's parameters (early stopping keeps them), the step
//! count, the order the examples were last shuffled into, the positions of
//! the two random generators (shuffling and head dropout; encoder dropout),
//! the epochs' records and whether early stopping has ended the run; saved
//! inside an epoch, also that epoch's batches, how many of them are done and
//! its loss and time so far ([`InEpoch`]). It is
//! saved as `graft-train-state.json` and a safetensors file it names; the
//! JSON file is replaced last, by a rename, so a run stopped while saving
//! leaves the previous state whole.
//!
//! A state belongs to one run: the settings that decide its result (the
//! base encoder, the labels, fusion, every training setting, the data
//! files' SHA-256) are saved with it, and a run with other settings refuses
//! the folder, naming what differs.

use super::metrics::Metrics;
use candle_core::{Tensor, Var};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Version of the state's layout.
pub const STATE_FORMAT: u32 = 1;
/// Every file graft writes in a checkpoint folder starts with this.
const PREFIX: &str = "graft-train-";
const STATE_FILE: &str = "graft-train-state.json";
/// A tensor file is written in this subfolder first: the safetensors writer
/// makes a temporary file beside its target (`.tmpXXXXXX`), which a run
/// stopped while saving would otherwise leave among the state's files.
const STAGING: &str = "graft-train-staging";

/// Why a checkpoint folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The path exists and is not a folder.
    #[error("--checkpoint-dir {0}: not a folder")]
    NotAFolder(PathBuf),
    /// The path, or a folder on it (`link`), is a symbolic link whose
    /// target does not exist.
    #[error("--checkpoint-dir {dir}: {} a symbolic link to {target}, which does not exist; create that folder or give another one", if link == dir { "is".to_string() } else { format!("{} is", link.display()) })]
    DanglingLink {
        dir: PathBuf,
        link: PathBuf,
        target: PathBuf,
    },
    /// Another process is training with this folder.
    #[error("--checkpoint-dir {0}: another graft run is using this folder; wait for it to end or give another folder")]
    InUse(PathBuf),
    /// The folder holds files that are not a training state.
    #[error("--checkpoint-dir {dir}: the folder holds other files ({example}); give an empty or new folder")]
    Foreign { dir: PathBuf, example: String },
    /// The state is another run's.
    #[error("--checkpoint-dir {dir} holds the state of another run ({}); delete the folder to start over, or give another one", differences.join("; "))]
    OtherRun {
        dir: PathBuf,
        differences: Vec<String>,
    },
    /// The state cannot be read back.
    #[error("--checkpoint-dir {dir}: cannot resume from the saved state: {message}; delete the folder to start over")]
    Corrupt { dir: PathBuf, message: String },
    /// Reading or writing failed.
    #[error("--checkpoint-dir {dir}: {message}")]
    Io { dir: PathBuf, message: String },
}

/// A ChaCha12 generator's position: its seed, stream and word position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed, hexadecimal.
    pub seed: String,
    pub stream: u64,
    /// The position in 32-bit words (a `u128`, written in decimal).
    pub word_pos: String,
}

impl RngState {
    /// The position of `rng`.
    pub fn of(rng: &ChaCha12Rng) -> Self {
        Self {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// The generator at this position.
    ///
    /// # Errors
    /// A message when the seed or the position do not parse.
    pub fn rng(&self) -> Result<ChaCha12Rng, String> {
        use rand::SeedableRng;
        let bytes: Vec<u8> = (0..self.seed.len())
            .step_by(2)
            .map(|i| {
                self.seed
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or("a generator seed is not hexadecimal")?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "a generator seed is not 32 bytes")?;
        let pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| "a generator position is not a number")?;
        let mut rng = ChaCha12Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

/// The best epoch so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Best {
    /// What picks it: the dev macro-F1 (fine-tuning, higher is better) or
    /// the held-out loss (pre-training, lower is better). NaN is written
    /// as null.
    #[serde(deserialize_with = "f64_or_nan")]
    pub score: f64,
    pub epoch: usize,
    /// Its dev measures (fine-tuning).
    pub metrics: Option<Metrics>,
}

/// Where a state saved inside an epoch stands in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InEpoch {
    /// Optimizer steps (batches) done of the epoch after `epochs_done`; at
    /// least 1 and fewer than its batches.
    pub steps: usize,
    /// That epoch's batches, as indices into the training examples (or
    /// texts): its shuffle, which has already moved the generator on.
    pub batches: Vec<Vec<usize>>,
    /// The losses of its steps done, each times what it averages over
    /// (examples, or masked tokens in pre-training), summed. NaN (a loss
    /// that blew up) is written as null.
    #[serde(deserialize_with = "f64_or_nan")]
    pub loss: f64,
    /// What `loss` is summed over so far (examples or masked tokens).
    pub count: usize,
    /// Its training time so far, in seconds.
    #[serde(deserialize_with = "f64_or_nan")]
    pub seconds: f64,
}

/// A training run's state after an epoch, without its tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub format: u32,
    /// The settings and data the run was started with.
    pub run: serde_json::Value,
    /// Epochs finished.
    pub epochs_done: usize,
    /// The stage the last finished epoch belongs to (pre-training: 0 for
    /// the head-only passes, 1 after; fine-tuning has one, 0).
    pub stage: usize,
    /// Optimizer steps taken in that stage (its schedule's position and
    /// AdamW's bias-correction t).
    pub steps: usize,
    /// Early stopping ended the run after `epochs_done`.
    pub stopped: bool,
    /// The training examples' order after the last shuffle.
    pub order: Vec<usize>,
    /// Shuffling and head dropout.
    pub rng: RngState,
    /// Encoder dropout.
    pub dropout_rng: RngState,
    pub best: Option<Best>,
    /// One record per finished epoch.
    pub history: Vec<serde_json::Value>,
    /// Saved inside the epoch after `epochs_done`: where it stands there.
    /// `None` at an epoch's end.
    #[serde(default)]
    pub in_epoch: Option<InEpoch>,
    /// The safetensors file beside the state: `param/NAME`, `m/NAME`,
    /// `v/NAME` and `best/NAME` for each trained parameter (no `best/`
    /// before the first epoch has ended).
    pub tensors: String,
}

impl TrainState {
    /// The name of its tensor file: `graft-train-epoch-E.safetensors`, or
    /// `graft-train-epoch-E-step-S.safetensors` for a state saved after step
    /// S of the epoch after E.
    fn tensor_file(&self) -> String {
        match &self.in_epoch {
            None => format!("{PREFIX}epoch-{}.safetensors", self.epochs_done),
            Some(p) => format!(
                "{PREFIX}epoch-{}-step-{}.safetensors",
                self.epochs_done, p.steps
            ),
        }
    }
}

/// Whether a run saves its state after step `done` (1-based) of an epoch of
/// `batches` steps, with `--save-steps every` (0: only at epoch ends, which
/// the epoch's own save covers).
pub fn save_due(every: usize, done: usize, batches: usize) -> bool {
    every > 0 && done.is_multiple_of(every) && done < batches
}

/// Refuses a checkpoint folder that is, holds or lies inside one of
/// `others` (flag name, path): `--out` is replaced as a whole and the
/// others hold files of their own. Paths are compared resolved (`./out`
/// and `out` are one folder), whether they exist yet or not.
///
/// # Errors
/// [`CheckpointError::Io`] naming the flag it collides with.
pub fn check_apart(dir: &Path, others: &[(&str, &Path)]) -> Result<(), CheckpointError> {
    let resolve = |p: &Path| -> PathBuf {
        if let Ok(c) = std::fs::canonicalize(p) {
            return c;
        }
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        match (absolute.parent(), absolute.file_name()) {
            (Some(parent), Some(name)) => std::fs::canonicalize(parent)
                .map(|c| c.join(name))
                .unwrap_or(absolute),
            _ => absolute,
        }
    };
    let me = resolve(dir);
    for (flag, other) in others {
        let other = resolve(other);
        if me.starts_with(&other) || other.starts_with(&me) {
            return Err(CheckpointError::Io {
                dir: dir.into(),
                message: format!(
                    "give a folder of its own, apart from {flag} {}",
                    other.display()
                ),
            });
        }
    }
    Ok(())
}

/// Reads a number that may have been written as null (JSON has no NaN):
/// null is NaN.
///
/// # Errors
/// The deserializer's, for anything but a number or null.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A checkpoint folder, locked for this process while the value lives.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    /// Holds an exclusive lock on `graft-train-lock`: a second run on the
    /// same folder is refused instead of overwriting this one's state.
    _lock: std::fs::File,
    /// `open` made the folder: it goes again when no state was saved in it.
    created: bool,
}

impl Checkpoint {
    /// Opens `dir`, creating it when missing. When the run ends without
    /// having saved a state (it failed before its first save), the lock
    /// file goes, and so does the folder if this made it. Temporary files a
    /// save stopped half-way left (`.tmpXXXXXX`, beside graft's files) are
    /// deleted.
    ///
    /// # Errors
    /// [`CheckpointError::NotAFolder`] for a file;
    /// [`CheckpointError::DanglingLink`] for a symbolic link to nothing;
    /// [`CheckpointError::Foreign`]
    /// when it holds files graft did not write; [`CheckpointError::InUse`]
    /// when another process has it open; [`CheckpointError::Io`] when it
    /// cannot be created or listed.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let io = |e: std::io::Error| CheckpointError::Io {
            dir: dir.into(),
            message: e.to_string(),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(CheckpointError::NotAFolder(dir.into()));
        }
        // The path or a folder on it may be a link to nothing, which
        // create_dir_all reports as a bare "File exists".
        let dangling = dir.ancestors().find_map(|link| {
            let target = std::fs::read_link(link).ok()?;
            (!link.exists()).then(|| CheckpointError::DanglingLink {
                dir: dir.into(),
                link: link.into(),
                target,
            })
        });
        if let Some(e) = dangling {
            return Err(e);
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(io)?;
        // The safetensors writer's temporary files (`.tmpXXXXXX`), which
        // graft before the staging folder wrote beside the state: a run
        // killed while saving left one. Deleted once the folder is ours.
        let (mut ours, mut leftovers, mut foreign) = (false, Vec::new(), None);
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy().into_owned();
            if name.starts_with(PREFIX) {
                ours = true;
            } else if is_write_leftover(&name) {
                leftovers.push(name);
            } else {
                foreign.get_or_insert(name);
            }
        }
        if let Some(example) = foreign.or_else(|| leftovers.first().filter(|_| !ours).cloned()) {
            return Err(CheckpointError::Foreign {
                dir: dir.into(),
                example,
            });
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{PREFIX}lock")))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CheckpointError::InUse(dir.into()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        for name in leftovers {
            std::fs::remove_file(dir.join(name)).map_err(io)?;
        }
        Ok(Self {
            dir: dir.into(),
            _lock: lock,
            created,
        })
    }

    /// The saved state, when there is one, after checking it is `run`'s.
    /// Its tensors are read by [`Self::load_tensors`].
    ///
    /// # Errors
    /// [`CheckpointError::OtherRun`] naming the settings that differ;
    /// [`CheckpointError::Corrupt`] for a state that does not parse or is of
    /// another format.
    pub fn state(&self, run: &serde_json::Value) -> Result<Option<TrainState>, CheckpointError> {
        let path = self.dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.corrupt(format!("{}: {e}", path.display()))),
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.corrupt(format!("{}: {e}", path.display())))?;
        // The format first: another layout is named as such.
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(STATE_FORMAT)) {
            return Err(self.corrupt(format!(
                "its format is {}, this graft reads {STATE_FORMAT}",
                format.map_or("missing".to_string(), |f| f.to_string())
            )));
        }
        // The command first: a `graft pretrain` state is not a `graft
        // train` run with other settings.
        let command = |v: &serde_json::Value| v["command"].as_str().map(str::to_owned);
        let (theirs, ours) = (command(&value["run"]), command(run));
        if theirs != ours {
            return Err(CheckpointError::OtherRun {
                dir: self.dir.clone(),
                differences: vec![format!(
                    "it is a `graft {}` state, this is `graft {}`",
                    theirs.as_deref().unwrap_or("?"),
                    ours.as_deref().unwrap_or("?")
                )],
            });
        }
        let state: TrainState = serde_json::from_value(value)
            .map_err(|e| self.corrupt(format!("{}: {e}", path.display())))?;
        self.check_consistent(&state)?;
        let mut differences = Vec::new();
        differ("", &state.run, run, &mut differences);
        if !differences.is_empty() {
            return Err(CheckpointError::OtherRun {
                dir: self.dir.clone(),
                differences,
            });
        }
        Ok(Some(state))
    }

    /// Refuses a state whose parts disagree (a hand-edited or mixed-up
    /// file): one epoch record per finished epoch, the tensor file of the
    /// last one (or of the step saved), a best epoch among them, an order
    /// that is a permutation; saved inside an epoch, batches that are one
    /// too, with the steps done fewer than them.
    fn check_consistent(&self, state: &TrainState) -> Result<(), CheckpointError> {
        let done = state.epochs_done;
        if state.history.len() != done {
            return Err(self.corrupt(format!(
                "it says {done} epochs are done and holds {} epoch records",
                state.history.len()
            )));
        }
        if let Some(p) = &state.in_epoch {
            if state.stopped {
                return Err(self.corrupt(
                    "it was saved inside an epoch of a run early stopping had ended".into(),
                ));
            }
            if p.batches.iter().any(Vec::is_empty) {
                return Err(self.corrupt("its epoch has an empty batch".into()));
            }
            if p.steps == 0 || p.steps >= p.batches.len() {
                return Err(self.corrupt(format!(
                    "it says {} steps of an epoch of {} batches are done",
                    p.steps,
                    p.batches.len()
                )));
            }
            if !is_permutation(p.batches.iter().flatten(), state.order.len()) {
                return Err(self
                    .corrupt("its epoch's batches are not a permutation of the examples".into()));
            }
        }
        if state.tensors != state.tensor_file() {
            return Err(self.corrupt(format!(
                "it says {done} epochs are done and names the tensors {:?}",
                state.tensors
            )));
        }
        if let Some(best) = state.best.as_ref().filter(|b| b.epoch > done) {
            return Err(self.corrupt(format!(
                "its best epoch, {}, is after the {done} done",
                best.epoch
            )));
        }
        if !is_permutation(state.order.iter(), state.order.len()) {
            return Err(self.corrupt("its example order is not a permutation".into()));
        }
        Ok(())
    }

    /// The tensors of `state`, by name.
    ///
    /// # Errors
    /// [`CheckpointError::Corrupt`] when the file is missing or unreadable.
    pub fn load_tensors(
        &self,
        state: &TrainState,
    ) -> Result<HashMap<String, Tensor>, CheckpointError> {
        if state.tensors.contains('/') || !state.tensors.starts_with(PREFIX) {
            return Err(self.corrupt(format!("it names the file {:?}", state.tensors)));
        }
        let path = self.dir.join(&state.tensors);
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .map_err(|e| self.corrupt(format!("{}: {e}", path.display())))
    }

    /// Saves `state` (whose `tensors` field is set here) and `tensors`:
    /// the tensors to a new file, then the state by a rename, then the
    /// previous tensor file is deleted.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when a file cannot be written.
    pub fn save(
        &self,
        state: &mut TrainState,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<(), CheckpointError> {
        let previous = std::fs::read_to_string(self.dir.join(STATE_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<TrainState>(&t).ok())
            .map(|s| s.tensors);
        state.tensors = state.tensor_file();
        let io = |message: String| CheckpointError::Io {
            dir: self.dir.clone(),
            message,
        };
        // On disk (fsync) before the state names it and before the previous
        // file goes: a power cut leaves the previous state or this one.
        let sync = |path: &Path| std::fs::File::open(path).and_then(|f| f.sync_all());
        // What a save that was stopped left goes first.
        let staging = self.dir.join(STAGING);
        remove_if_there(&staging)
            .and_then(|()| std::fs::create_dir(&staging))
            .map_err(|e| io(format!("{}: {e}", staging.display())))?;
        let staged = staging.join(&state.tensors);
        candle_core::safetensors::save(tensors, &staged)
            .map_err(|e| io(format!("writing {}: {e}", staged.display())))?;
        sync(&staged)
            .and_then(|()| std::fs::rename(&staged, self.dir.join(&state.tensors)))
            .and_then(|()| std::fs::remove_dir(&staging))
            .map_err(|e| io(format!("writing {}: {e}", state.tensors)))?;
        let json = serde_json::to_vec(state).map_err(|e| io(e.to_string()))?;
        let staged = self.dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&staged, json)
            .and_then(|()| sync(&staged))
            .and_then(|()| std::fs::rename(&staged, self.dir.join(STATE_FILE)))
            .and_then(|()| sync(&self.dir))
            .map_err(|e| io(format!("writing {STATE_FILE}: {e}")))?;
        if let Some(old) = previous.filter(|old| *old != state.tensors && old.starts_with(PREFIX)) {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        Ok(())
    }

    /// Deletes the state and the folder (once the model is written).
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when a file cannot be deleted.
    pub fn remove(self) -> Result<(), CheckpointError> {
        let io = |e: std::io::Error| CheckpointError::Io {
            dir: self.dir.clone(),
            message: e.to_string(),
        };
        // The state first: a stop half-way leaves no state naming a
        // deleted file.
        match std::fs::remove_file(self.dir.join(STATE_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io)?;
            if entry.file_name().to_string_lossy().starts_with(PREFIX) {
                remove_if_there(&entry.path()).map_err(io)?;
            }
        }
        // Left in place when something else appeared in it meanwhile.
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Sets `vars` (named `names`) to their saved values and returns the
    /// best epoch's values (in the same order) and the AdamW moments saved
    /// with them, by name (those of the parameters the last stage trained).
    ///
    /// # Errors
    /// [`CheckpointError::Corrupt`] when a value is missing or of another
    /// shape; [`CheckpointError::Io`] when a variable cannot be set.
    pub fn restore(
        &self,
        tensors: &HashMap<String, Tensor>,
        names: &[String],
        vars: &[Var],
    ) -> Result<Restored, CheckpointError> {
        let get = |key: String, like: &Var| -> Result<Option<Tensor>, CheckpointError> {
            let Some(t) = tensors.get(&key) else {
                return Ok(None);
            };
            if t.dims() != like.dims() {
                return Err(self.corrupt(format!(
                    "{key} is {:?}, the parameter is {:?}",
                    t.dims(),
                    like.dims()
                )));
            }
            Ok(Some(t.clone()))
        };
        let need = |key: String, like: &Var| -> Result<Tensor, CheckpointError> {
            get(key.clone(), like)?.ok_or_else(|| self.corrupt(format!("no tensor {key}")))
        };
        let mut restored = Restored {
            best: Vec::with_capacity(vars.len()),
            moments: HashMap::new(),
        };
        // A state saved before the first epoch ended has no best values.
        let has_best = names
            .first()
            .is_some_and(|n| tensors.contains_key(&format!("best/{n}")));
        for (name, var) in names.iter().zip(vars) {
            var.set(&need(format!("param/{name}"), var)?)
                .map_err(|e| self.corrupt(e.to_string()))?;
            if has_best {
                restored.best.push(need(format!("best/{name}"), var)?);
            }
            if let (Some(m), Some(v)) = (
                get(format!("m/{name}"), var)?,
                get(format!("v/{name}"), var)?,
            ) {
                restored.moments.insert(name.clone(), (m, v));
            }
        }
        Ok(restored)
    }

    /// [`CheckpointError::Corrupt`] for this folder: a saved state that
    /// does not fit the run resuming from it.
    pub fn corrupt(&self, message: String) -> CheckpointError {
        CheckpointError::Corrupt {
            dir: self.dir.clone(),
            message,
        }
    }
}

impl Drop for Checkpoint {
    /// A run that saved nothing leaves nothing: the lock file goes, and the
    /// folder when `open` made it (and it is empty by then).
    fn drop(&mut self) {
        if self.dir.join(STATE_FILE).exists() {
            return;
        }
        // The lock, and what a save that failed before writing the state
        // left (the staging folder, a tensor file no state names).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(PREFIX) {
                    let _ = remove_if_there(&entry.path());
                }
            }
        }
        if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// What [`Checkpoint::restore`] gives back besides the parameters' values.
pub struct Restored {
    /// The best epoch's values, in the order of the names given; empty for a
    /// state saved before the first epoch ended.
    pub best: Vec<Tensor>,
    /// (first, second) AdamW moments by parameter name.
    pub moments: HashMap<String, (Tensor, Tensor)>,
}

/// A state's tensors: each of `vars` (named `names`) as it is and as it was
/// at the best epoch (`best`, same order; empty before the first epoch has
/// ended), and the `moments` of the optimizer that trains them
/// ([`super::optim::GroupedAdamW::moments`]).
pub fn tensors(
    names: &[String],
    vars: &[Var],
    best: &[Tensor],
    moments: Vec<(&str, Tensor, Tensor)>,
) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (name, var) in names.iter().zip(vars) {
        out.insert(format!("param/{name}"), var.as_tensor().clone());
    }
    for (name, kept) in names.iter().zip(best) {
        out.insert(format!("best/{name}"), kept.clone());
    }
    for (name, m, v) in moments {
        out.insert(format!("m/{name}"), m);
        out.insert(format!("v/{name}"), v);
    }
    out
}

/// Whether `name` is a temporary file of the safetensors writer (the
/// `tempfile` crate's default name: `.tmp` and 6 letters or digits).
fn is_write_leftover(name: &str) -> bool {
    name.len() == 10
        && name.starts_with(".tmp")
        && name[4..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Deletes a file, or a folder with what it holds; nothing there is fine.
fn remove_if_there(path: &Path) -> std::io::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether `items` holds each of `0..n` exactly once.
fn is_permutation<'a>(items: impl Iterator<Item = &'a usize>, n: usize) -> bool {
    let mut seen = vec![false; n];
    let mut count = 0;
    for &i in items {
        match seen.get_mut(i) {
            Some(s) if !*s => *s = true,
            _ => return false,
        }
        count += 1;
    }
    count == n
}

/// Collects the paths where `saved` and `now` differ, as "path: saved then,
/// now now".
fn differ(path: &str, saved: &serde_json::Value, now: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (saved, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                differ(
                    &sub,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} then, {b} now")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_generator_goes_on_from_its_saved_position() {
        let mut a = ChaCha12Rng::seed_from_u64(42);
        for _ in 0..1001 {
            a.random::<f32>();
        }
        let saved = RngState::of(&a);
        let json = serde_json::to_string(&saved).unwrap();
        let mut b = serde_json::from_str::<RngState>(&json)
            .unwrap()
            .rng()
            .unwrap();
        let (x, y): (Vec<u64>, Vec<u64>) = (0..50)
            .map(|_| (a.random::<u64>(), b.random::<u64>()))
            .unzip();
        assert_eq!(x, y);
        // The same stream as rand's StdRng from the same seed (graft's
        // earlier runs drew from it).
        let mut std = rand::rngs::StdRng::seed_from_u64(7);
        let mut chacha = ChaCha12Rng::seed_from_u64(7);
        for _ in 0..100 {
            assert_eq!(std.random::<u32>(), chacha.random::<u32>());
        }
        let bad = RngState {
            seed: "zz".into(),
            ..saved.clone()
        };
        assert!(bad.rng().unwrap_err().contains("hexadecimal"));
        let short = RngState {
            seed: "00ff".into(),
            ..saved.clone()
        };
        assert!(short.rng().unwrap_err().contains("32 bytes"));
        let pos = RngState {
            word_pos: "-1".into(),
            ..saved
        };
        assert!(pos.rng().unwrap_err().contains("position"));
    }

    fn a_state(epochs_done: usize) -> TrainState {
        let rng = RngState::of(&ChaCha12Rng::seed_from_u64(1));
        TrainState {
            format: STATE_FORMAT,
            run: serde_json::json!({"command": "train", "seed": 1}),
            epochs_done,
            stage: 0,
            steps: 3 * epochs_done,
            stopped: false,
            order: vec![2, 0, 1],
            rng: rng.clone(),
            dropout_rng: rng,
            best: Some(Best {
                score: 0.5,
                epoch: 1,
                metrics: None,
            }),
            history: (1..=epochs_done)
                .map(|e| serde_json::json!({ "epoch": e }))
                .collect(),
            in_epoch: None,
            tensors: String::new(),
        }
    }

    type Edit = fn(&mut serde_json::Value);

    /// Writes each edit of the `saved` state to its file and checks that
    /// the state is refused as damaged, with the edit's message.
    fn assert_each_refused(
        checkpoint: &Checkpoint,
        saved: &serde_json::Value,
        edits: &[(&str, Edit)],
    ) {
        let path = checkpoint.dir.join(STATE_FILE);
        for (message, edit) in edits {
            let mut value = saved.clone();
            edit(&mut value);
            std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
            let err = checkpoint.state(&saved["run"]).unwrap_err().to_string();
            assert!(err.contains(message), "{message}: {err}");
            assert!(err.contains("cannot resume"), "{err}");
        }
    }

    fn a_tensor() -> HashMap<String, Tensor> {
        let t = Tensor::new(&[1f32, 2., 3.], &candle_core::Device::Cpu).unwrap();
        HashMap::from([("param/w".to_string(), t)])
    }

    #[test]
    fn a_run_that_saved_nothing_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // A folder it made goes with the lock file.
        let made = tmp.path().join("new");
        drop(Checkpoint::open(&made).unwrap());
        assert!(!made.exists());
        // A folder that was there stays, empty again.
        let given = tmp.path().join("given");
        std::fs::create_dir(&given).unwrap();
        drop(Checkpoint::open(&given).unwrap());
        assert!(given.is_dir());
        assert_eq!(std::fs::read_dir(&given).unwrap().count(), 0);
        // A saved state stays, lock file and all, and is read back.
        let checkpoint = Checkpoint::open(&made).unwrap();
        checkpoint.save(&mut a_state(1), &a_tensor()).unwrap();
        drop(checkpoint);
        let again = Checkpoint::open(&made).unwrap();
        let state = again.state(&a_state(1).run).unwrap().unwrap();
        assert_eq!(state.epochs_done, 1);
        assert_eq!(again.load_tensors(&state).unwrap().len(), 1);
    }

    #[test]
    fn what_a_stopped_save_left_is_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let checkpoint = Checkpoint::open(&dir).unwrap();
        checkpoint.save(&mut a_state(1), &a_tensor()).unwrap();
        assert!(!dir.join(STAGING).exists(), "a finished save leaves none");
        // Beside the state, as graft before the staging folder left it: the
        // folder opens and the file goes.
        drop(checkpoint);
        std::fs::write(dir.join(".tmpXyZ789"), b"partial").unwrap();
        let checkpoint = Checkpoint::open(&dir).unwrap();
        assert!(!dir.join(".tmpXyZ789").exists());
        // Alone in a folder it is not taken for graft's.
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(".tmpXyZ789"), b"partial").unwrap();
        let err = Checkpoint::open(&other).unwrap_err().to_string();
        assert!(err.contains("holds other files (.tmpXyZ789)"), "{err}");
        // A save stopped while writing: the safetensors writer's temporary
        // file in the staging folder.
        std::fs::create_dir(dir.join(STAGING)).unwrap();
        std::fs::write(dir.join(STAGING).join(".tmpAbC123"), b"partial").unwrap();
        drop(checkpoint);
        let again = Checkpoint::open(&dir).unwrap();
        assert!(again.state(&a_state(1).run).unwrap().is_some());
        again.save(&mut a_state(2), &a_tensor()).unwrap();
        assert!(!dir.join(STAGING).exists());
        std::fs::create_dir(dir.join(STAGING)).unwrap();
        std::fs::write(dir.join(STAGING).join(".tmpAbC123"), b"partial").unwrap();
        again.remove().unwrap();
        assert!(!dir.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_to_nothing_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("missing"), &link).unwrap();
        let err = Checkpoint::open(&link).unwrap_err().to_string();
        assert!(err.contains("link: is a symbolic link to"), "{err}");
        assert!(err.contains("missing, which does not exist"), "{err}");
        // A folder inside such a link names the link.
        let err = Checkpoint::open(&link.join("run")).unwrap_err().to_string();
        assert!(
            err.contains(&format!("run: {} is a symbolic link to", link.display())),
            "{err}"
        );
        assert!(!tmp.path().join("missing").exists());
        // A link to a folder is that folder.
        std::fs::create_dir(tmp.path().join("missing")).unwrap();
        drop(Checkpoint::open(&link).unwrap());
    }

    #[test]
    fn a_state_whose_parts_disagree_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let checkpoint = Checkpoint::open(&dir).unwrap();
        checkpoint.save(&mut a_state(2), &a_tensor()).unwrap();
        let path = dir.join(STATE_FILE);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let run = saved["run"].clone();
        assert!(checkpoint.state(&run).unwrap().is_some());
        let edits: [(&str, Edit); 4] = [
            ("holds 2 epoch records", |v| v["epochs_done"] = 3.into()),
            ("names the tensors", |v| {
                v["tensors"] = "graft-train-epoch-1.safetensors".into()
            }),
            ("best epoch, 5, is after", |v| v["best"]["epoch"] = 5.into()),
            ("not a permutation", |v| {
                v["order"] = serde_json::json!([0, 0, 1])
            }),
        ];
        assert_each_refused(&checkpoint, &saved, &edits);
    }

    #[test]
    fn a_state_saved_inside_an_epoch_names_its_step_and_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let checkpoint = Checkpoint::open(&dir).unwrap();
        checkpoint.save(&mut a_state(1), &a_tensor()).unwrap();
        let mut state = a_state(1);
        state.in_epoch = Some(InEpoch {
            steps: 1,
            batches: vec![vec![1, 2], vec![0]],
            loss: 0.25,
            count: 2,
            seconds: 1.5,
        });
        checkpoint.save(&mut state, &a_tensor()).unwrap();
        assert_eq!(state.tensors, "graft-train-epoch-1-step-1.safetensors");
        assert!(dir.join(&state.tensors).is_file());
        assert!(
            !dir.join("graft-train-epoch-1.safetensors").exists(),
            "the previous tensor file goes"
        );
        let path = dir.join(STATE_FILE);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let run = saved["run"].clone();
        let back = checkpoint.state(&run).unwrap().unwrap();
        let p = back.in_epoch.unwrap();
        assert_eq!(
            (p.steps, p.batches, p.count),
            (1, vec![vec![1, 2], vec![0]], 2)
        );
        assert_eq!((p.loss, p.seconds), (0.25, 1.5));
        // A loss that blew up (NaN, written as null) reads back.
        let mut nan = a_state(1);
        nan.in_epoch = Some(InEpoch {
            loss: f64::NAN,
            ..state.in_epoch.clone().unwrap()
        });
        checkpoint.save(&mut nan, &a_tensor()).unwrap();
        let back = checkpoint.state(&run).unwrap().unwrap();
        assert!(back.in_epoch.unwrap().loss.is_nan());
        checkpoint.save(&mut state, &a_tensor()).unwrap();
        let edits: [(&str, Edit); 7] = [
            ("early stopping had ended", |v| v["stopped"] = true.into()),
            ("an empty batch", |v| {
                v["in_epoch"]["batches"] = serde_json::json!([[1, 2, 0], []])
            }),
            ("0 steps of an epoch of 2 batches", |v| {
                v["in_epoch"]["steps"] = 0.into()
            }),
            ("2 steps of an epoch of 2 batches", |v| {
                v["in_epoch"]["steps"] = 2.into()
            }),
            ("batches are not a permutation", |v| {
                v["in_epoch"]["batches"] = serde_json::json!([[1, 1], [0]])
            }),
            ("batches are not a permutation", |v| {
                v["in_epoch"]["batches"] = serde_json::json!([[1], [0]])
            }),
            ("names the tensors", |v| {
                v["tensors"] = "graft-train-epoch-1.safetensors".into()
            }),
        ];
        assert_each_refused(&checkpoint, &saved, &edits);
    }

    #[test]
    fn scores_come_back_bit_for_bit() {
        // 14/15 is one a plain decimal parse reads one unit in the last
        // place low (serde_json needs `float_roundtrip`); NaN is written
        // as null and read as NaN.
        for score in [14.0 / 15.0, 0.1 + 0.2, 1.0 / 3.0, f64::NAN] {
            let best = Best {
                score,
                epoch: 2,
                metrics: None,
            };
            let back: Best = serde_json::from_str(&serde_json::to_string(&best).unwrap()).unwrap();
            if score.is_nan() {
                assert!(back.score.is_nan());
            } else {
                assert_eq!(back.score.to_bits(), score.to_bits(), "{score}");
            }
        }
    }

    #[test]
    fn differences_name_the_setting() {
        let saved = serde_json::json!({"lr": 5e-5, "data": {"train": {"sha256": "aa"}}, "seed": 1});
        let now = serde_json::json!({"lr": 1e-4, "data": {"train": {"sha256": "bb"}}, "seed": 1, "extra": true});
        let mut out = Vec::new();
        differ("", &saved, &now, &mut out);
        assert_eq!(
            out,
            vec![
                "data.train.sha256: \"aa\" then, \"bb\" now".to_string(),
                "extra: null then, true now".to_string(),
                "lr: 0.00005 then, 0.0001 now".to_string(),
            ]
        );
    }
}
