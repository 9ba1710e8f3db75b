//! The answer cache: classification answers kept on disk (sled, under
//! `DATA_DIR/cache`), so a text seen before is answered without linking or
//! encoding. Knows nothing of HTTP or of what an answer contains: it stores
//! bytes under a key, tagged with the *epoch* they were computed in.
//!
//! - **Key**: SHA-256 over the epoch (model fingerprint, a context of the
//!   cache format, store identity and linking settings, graph generation),
//!   the options that change the answer and the text ([`key`]); a graph
//!   write or a model reload changes the key, so older entries become
//!   unreachable.
//! - **Purge**: [`AnswerCache::purge`] deletes entries whose epoch is no
//!   longer live; the service runs it
//!   in the background after a write or a reload.
//! - **Size bound**: the bytes of keys and values are counted; past
//!   `max_bytes` the oldest entries (first inserted) are evicted.
//! - **Corruption**: a cache that cannot be opened or whose entries cannot
//!   be decoded is rebuilt (entries dropped) with a warning, never fatal.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What an entry was computed with; entries of epochs that are no longer
/// live are purged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Epoch {
    /// The model fingerprint (hex).
    pub fingerprint: String,
    /// The store generation the answer was computed at.
    pub generation: u64,
}

/// The parts of a cache key, all of them: a field that changes the answer
/// and is not here would serve wrong answers.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// The model (fingerprint and settings) and the graph generation.
    pub epoch: &'a Epoch,
    /// The request options that change the answer, in a canonical form
    /// (e.g. `top_k=5;threshold=none;explain=true;use_graph=true;lang=auto;fallback=out_of_scope`).
    pub options: &'a str,
    /// The text, exactly as sent.
    pub text: &'a str,
}

/// A 32-byte cache key: SHA-256 of the parts, each length-prefixed so that
/// no two different part lists hash the same bytes.
pub fn key(parts: &KeyParts<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    for field in [
        parts.epoch.fingerprint.as_bytes(),
        &parts.epoch.generation.to_be_bytes(),
        parts.options.as_bytes(),
        parts.text.as_bytes(),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.finalize().into()
}

/// Errors of the cache. The service logs them and goes on without the
/// entry: a cache failure never fails a request.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache at {path}: {source}")]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cache at {path} could not be opened or rebuilt: {message}")]
    Unusable { path: PathBuf, message: String },
}

/// The on-disk answer cache. Cheap to share (`&self` methods, internally
/// synchronised).
pub struct AnswerCache {
    path: PathBuf,
    db: sled::Db,
    /// key → entry (see [`Entry`]).
    entries: sled::Tree,
    /// insertion sequence (u64 big-endian) → key: the eviction order.
    order: sled::Tree,
    max_bytes: u64,
    bytes: AtomicU64,
    /// Entries in `entries` (sled's own `len` walks the whole tree).
    count: AtomicU64,
    seq: AtomicU64,
    /// Serialises insert/evict/purge bookkeeping (reads take no lock).
    write: Mutex<()>,
}

/// A decoded entry: `[seq u64][generation u64][fingerprint len u16][fingerprint][payload]`.
struct Entry<'a> {
    seq: u64,
    epoch: Epoch,
    payload: &'a [u8],
}

impl<'a> Entry<'a> {
    fn decode(bytes: &'a [u8]) -> Option<Self> {
        let seq = u64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?);
        let generation = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        let n = u16::from_be_bytes(bytes.get(16..18)?.try_into().ok()?) as usize;
        let fingerprint = std::str::from_utf8(bytes.get(18..18 + n)?).ok()?.to_owned();
        Some(Self {
            seq,
            epoch: Epoch {
                fingerprint,
                generation,
            },
            payload: bytes.get(18 + n..)?,
        })
    }

    fn encode(seq: u64, epoch: &Epoch, payload: &[u8]) -> Vec<u8> {
        let fp = epoch.fingerprint.as_bytes();
        let fp = &fp[..fp.len().min(u16::MAX as usize)];
        let mut out = Vec::with_capacity(18 + fp.len() + payload.len());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&epoch.generation.to_be_bytes());
        out.extend_from_slice(&(fp.len() as u16).to_be_bytes());
        out.extend_from_slice(fp);
        out.extend_from_slice(payload);
        out
    }
}

/// Why a cache did not open: its files are damaged (rebuild it), or the
/// system refused (keep it).
#[derive(Debug)]
enum OpenError {
    Damaged(String),
    Io(String),
}

impl From<sled::Error> for OpenError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => Self::Io(io.to_string()),
            other => Self::Damaged(other.to_string()),
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged(m) | Self::Io(m) => f.write_str(m),
        }
    }
}

/// Counts of [`AnswerCache::stats`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CacheStats {
    /// Answers stored.
    pub entries: usize,
    /// Bytes of keys and values counted against the bound.
    pub bytes: u64,
    /// The bound (`--cache-mb`).
    pub max_bytes: u64,
}

impl AnswerCache {
    /// Opens (or creates) the cache in `dir`, bounded to `max_bytes` of keys
    /// and values. A cache that cannot be opened (corrupt files, a format
    /// from another sled version) is deleted and created afresh; the
    /// returned warning says so.
    ///
    /// A lock held by a cache of this process that is closing is waited for
    /// (up to 3 s): sled releases it from its flusher thread, up to a second
    /// after the handle is dropped.
    ///
    /// # Errors
    /// [`CacheError::Unusable`] when even a fresh cache cannot be created
    /// (e.g. the directory is not writable) or another process holds it.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Self, Option<String>), CacheError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let opened = loop {
            match Self::try_open(dir, max_bytes) {
                Err(OpenError::Io(m))
                    if m.contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other,
            }
        };
        match opened {
            Ok(cache) => Ok((cache, None)),
            // Out of file descriptors, no permission, a lock: the data may be
            // fine; never delete it for that.
            Err(OpenError::Io(message)) => Err(CacheError::Unusable {
                path: dir.into(),
                message,
            }),
            Err(OpenError::Damaged(first)) => {
                let warning = format!("the cache was unreadable and is rebuilt empty: {first}");
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| CacheError::Unusable {
                        path: dir.into(),
                        message: format!("{first}; removing it failed: {e}"),
                    })?;
                }
                let cache = Self::try_open(dir, max_bytes).map_err(|e| CacheError::Unusable {
                    path: dir.into(),
                    message: e.to_string(),
                })?;
                Ok((cache, Some(warning)))
            }
        }
    }

    /// Opens and checks every entry; a panic inside sled on damaged files
    /// counts as an unreadable cache.
    fn try_open(dir: &Path, max_bytes: u64) -> Result<Self, OpenError> {
        let dir_owned = dir.to_path_buf();
        let opened = std::panic::catch_unwind(move || -> Result<Self, OpenError> {
            let db = sled::Config::new()
                .path(&dir_owned)
                .cache_capacity(16 << 20)
                .flush_every_ms(Some(1000))
                .open()
                .map_err(OpenError::from)?;
            let entries = db.open_tree("answers").map_err(OpenError::from)?;
            let order = db.open_tree("order").map_err(OpenError::from)?;
            let (mut bytes, mut count, mut max_seq) = (0u64, 0u64, 0u64);
            for item in entries.iter() {
                let (k, v) = item.map_err(OpenError::from)?;
                let entry =
                    Entry::decode(&v).ok_or(OpenError::Damaged("an entry is damaged".into()))?;
                bytes += (k.len() + v.len()) as u64;
                count += 1;
                max_seq = max_seq.max(entry.seq);
            }
            Ok(Self {
                path: dir_owned,
                db,
                entries,
                order,
                max_bytes,
                bytes: AtomicU64::new(bytes),
                count: AtomicU64::new(count),
                seq: AtomicU64::new(max_seq + 1),
                write: Mutex::new(()),
            })
        });
        match opened {
            Ok(result) => result,
            Err(_) => Err(OpenError::Damaged("sled panicked while opening it".into())),
        }
    }

    /// The stored payload under `key`, when its entry is readable.
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let value = self.entries.get(key).ok()??;
        match Entry::decode(&value) {
            Some(entry) => Some(entry.payload.to_vec()),
            None => {
                tracing::warn!(path = %self.path.display(), "a damaged cache entry was dropped");
                self.remove_if(key, &value);
                None
            }
        }
    }

    /// Stores `payload` under `key`, then evicts the oldest entries while
    /// the cache is over its bound.
    ///
    /// # Errors
    /// [`CacheError::Sled`] when the write fails (the caller logs it).
    pub fn insert(&self, key: &[u8; 32], epoch: &Epoch, payload: &[u8]) -> Result<(), CacheError> {
        let sled_err = |source| CacheError::Sled {
            path: self.path.clone(),
            source,
        };
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let value = Entry::encode(seq, epoch, payload);
        let added = (key.len() + value.len()) as u64;
        // The eviction order first: an entry is never stored without a
        // way to evict it (a failure below leaves an order key without an
        // entry, which eviction skips).
        self.order
            .insert(seq.to_be_bytes(), key.as_slice())
            .map_err(sled_err)?;
        if let Some(old) = self.entries.insert(key, value).map_err(sled_err)? {
            self.forget(key, &old).map_err(sled_err)?;
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        while self.bytes.load(Ordering::Relaxed) > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_min().map_err(sled_err)? else {
                break;
            };
            if let Some(old) = self.entries.remove(&oldest).map_err(sled_err)? {
                self.bytes
                    .fetch_sub((oldest.len() + old.len()) as u64, Ordering::Relaxed);
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Removes the bookkeeping of a replaced or removed entry.
    fn forget(&self, key: &[u8], old: &[u8]) -> Result<(), sled::Error> {
        self.bytes
            .fetch_sub((key.len() + old.len()) as u64, Ordering::Relaxed);
        self.count.fetch_sub(1, Ordering::Relaxed);
        if let Some(entry) = Entry::decode(old) {
            self.order.remove(entry.seq.to_be_bytes())?;
        }
        Ok(())
    }

    fn remove(&self, key: &[u8]) {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some(old)) = self.entries.remove(key) {
            let _ = self.forget(key, &old);
        }
    }

    /// Removes `key` only while it still holds `value` (a fresh entry
    /// written since the read stays).
    fn remove_if(&self, key: &[u8], value: &[u8]) {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Ok(())) = self
            .entries
            .compare_and_swap(key, Some(value), None as Option<&[u8]>)
        {
            let _ = self.forget(key, value);
        }
    }

    /// Deletes every entry whose epoch `is_live` rejects (and every damaged
    /// entry); returns how many were deleted.
    pub fn purge(&self, is_live: impl Fn(&Epoch) -> bool) -> usize {
        let mut stale = Vec::new();
        for (k, v) in self.entries.iter().flatten() {
            let live = Entry::decode(&v).is_some_and(|e| is_live(&e.epoch));
            if !live {
                stale.push(k);
            }
        }
        for k in &stale {
            self.remove(k);
        }
        stale.len()
    }

    /// Entries, bytes and the bound.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.count.load(Ordering::Relaxed) as usize,
            bytes: self.bytes.load(Ordering::Relaxed),
            max_bytes: self.max_bytes,
        }
    }

    /// Writes everything to disk (called on shutdown).
    pub fn flush(&self) {
        if let Err(e) = self.db.flush() {
            tracing::warn!(error = %e, "cache flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(fp: &str, generation: u64) -> Epoch {
        Epoch {
            fingerprint: fp.into(),
            generation,
        }
    }

    fn k(e: &Epoch, text: &str) -> [u8; 32] {
        key(&KeyParts {
            epoch: e,
            options: "o",
            text,
        })
    }

    #[test]
    fn every_part_changes_the_key() {
        let e = epoch("a", 1);
        let base = k(&e, "t");
        assert_ne!(base, k(&epoch("b", 1), "t"));
        assert_ne!(base, k(&epoch("a", 2), "t"));
        assert_ne!(base, k(&e, "u"));
        let other_options = key(&KeyParts {
            epoch: &e,
            options: "p",
            text: "t",
        });
        assert_ne!(base, other_options);
        // Length prefixes: moving a byte between parts changes the key.
        let shifted = key(&KeyParts {
            epoch: &e,
            options: "ot",
            text: "",
        });
        assert_ne!(base, shifted);
    }

    #[test]
    fn insert_get_purge_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let (old, new) = (epoch("m", 1), epoch("m", 2));
        {
            let (cache, warning) = AnswerCache::open(&path, 1 << 20).unwrap();
            assert!(warning.is_none());
            cache.insert(&k(&old, "a"), &old, b"A").unwrap();
            cache.insert(&k(&new, "b"), &new, b"B").unwrap();
            assert_eq!(cache.get(&k(&old, "a")).as_deref(), Some(&b"A"[..]));
            assert_eq!(cache.purge(|e| e.generation == 2), 1);
            assert_eq!(cache.get(&k(&old, "a")), None);
            cache.flush();
        }
        let (cache, _) = AnswerCache::open(&path, 1 << 20).unwrap();
        assert_eq!(cache.get(&k(&new, "b")).as_deref(), Some(&b"B"[..]));
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn the_oldest_entries_are_evicted_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let e = epoch("m", 1);
        // Each entry: 32-byte key + 18 + 1 (fingerprint) + 100 payload = 151 bytes.
        let (cache, _) = AnswerCache::open(&dir.path().join("c"), 151 * 3).unwrap();
        for i in 0..5 {
            cache
                .insert(&k(&e, &i.to_string()), &e, &[b'x'; 100])
                .unwrap();
        }
        let stats = cache.stats();
        assert_eq!(stats.entries, 3, "{stats:?}");
        assert!(stats.bytes <= stats.max_bytes);
        assert!(cache.get(&k(&e, "0")).is_none() && cache.get(&k(&e, "1")).is_none());
        assert!(cache.get(&k(&e, "4")).is_some());
        // Replacing an entry does not count it twice.
        cache.insert(&k(&e, "4"), &e, &[b'y'; 100]).unwrap();
        assert_eq!(cache.stats().entries, 3);
        assert_eq!(cache.stats().bytes, 151 * 3);
    }

    #[test]
    fn a_corrupt_cache_is_rebuilt_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        {
            let (cache, _) = AnswerCache::open(&path, 1 << 20).unwrap();
            let e = epoch("m", 1);
            cache.insert(&k(&e, "a"), &e, b"A").unwrap();
            cache.flush();
        }
        // Overwrite every file sled wrote with garbage.
        for entry in walk(&path) {
            std::fs::write(&entry, vec![0xA5u8; 4096]).unwrap();
        }
        let (cache, warning) = AnswerCache::open(&path, 1 << 20).unwrap();
        assert!(warning.is_some(), "a rebuilt cache says so");
        assert_eq!(cache.stats().entries, 0);
        let e = epoch("m", 1);
        cache.insert(&k(&e, "a"), &e, b"A").unwrap();
        assert!(cache.get(&k(&e, "a")).is_some());
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
