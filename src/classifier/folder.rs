//! Writing a model folder without losing one: the `--out` checks, and a
//! staged write swapped in whole (a failed run leaves `--out` as it was).

use super::ClassifierError;
use std::path::Path;

/// Refuses an `out` that is the `base` model folder, an existing file, or a
/// non-empty folder without `marker` (the file every folder of this kind has, e.g.
/// `graft.json`); `kind` names that kind in the message, `verb` the work
/// that would overwrite.
///
/// Errors: [`ClassifierError::Other`] with the reason.
pub(crate) fn check_out(
    base: &Path,
    out: &Path,
    marker: &str,
    kind: &str,
    verb: &str,
) -> Result<(), ClassifierError> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(base), std::fs::canonicalize(out)) {
        if a == b {
            return Err(ClassifierError::Other(format!(
                "--out {} is the base model folder: {verb} would overwrite it",
                out.display()
            )));
        }
    }
    if out.exists() && !out.is_dir() {
        return Err(ClassifierError::Other(format!(
            "--out {} exists and is not a folder: refusing to overwrite it",
            out.display()
        )));
    }
    let has_files = std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some());
    if has_files && !out.join(marker).is_file() {
        return Err(ClassifierError::Other(format!(
            "--out {} exists and is not {kind}: refusing to overwrite it",
            out.display()
        )));
    }
    Ok(())
}

/// Lets `fill` write a folder in a staging folder beside `out`, then
/// replaces `out` with it. When `fill` fails or the old `out` cannot be
/// removed, the staging folder is removed and `out` is untouched; when the
/// final rename fails, the error names where the new folder was left.
///
/// Errors: what `fill` returns; [`ClassifierError::Other`] naming the path
/// when the folder cannot be created, removed or renamed.
pub(crate) fn write_staged(
    out: &Path,
    fill: impl FnOnce(&Path) -> Result<(), ClassifierError>,
) -> Result<(), ClassifierError> {
    let io =
        |what: &Path, e: std::io::Error| ClassifierError::Other(format!("{}: {e}", what.display()));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
    if let Err(e) = fill(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if out.exists() {
        if let Err(e) = std::fs::remove_dir_all(out) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io(out, e));
        }
    }
    // The old folder is gone: on failure, say where the new one is.
    std::fs::rename(&staging, out).map_err(|e| {
        ClassifierError::Other(format!(
            "{}: {e} (the new folder is at {})",
            out.display(),
            staging.display()
        ))
    })
}
