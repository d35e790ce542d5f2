//! Shared output helpers: error chains on one line, JSON printing, output-path safety.
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// `outer: inner: innermost`, without repeating a cause the outer message already contains.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot serialize the report")?
    );
    Ok(())
}

/// The absolute form of a path that may not exist yet (its folder must).
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// Refuses to write over any of `inputs` unless `force` is set.
pub fn check_not_overwriting(outputs: &[PathBuf], inputs: &[PathBuf], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let inputs: Vec<PathBuf> = inputs.iter().filter_map(|p| resolved(p)).collect();
    for out in outputs {
        if let Some(o) = resolved(out)
            && inputs.contains(&o)
        {
            bail!(
                "{}: refusing to overwrite an input file (pass --force to allow it)",
                out.display()
            );
        }
    }
    Ok(())
}

/// Prints what a save wrote: the model, its data files, and the save's notes.
pub fn print_saved(report: &whittle_ir::SaveReport) {
    println!(
        "wrote {} ({} bytes)",
        report.model_path.display(),
        report.model_bytes
    );
    for (path, size) in &report.data_files {
        println!("wrote {} ({size} bytes)", path.display());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}
