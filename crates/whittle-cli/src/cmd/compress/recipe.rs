//! Compress recipes: the pipeline's steps and options as a TOML file, so a pipeline is
//! versioned with the model.
//!
//! Every key is optional; an unknown key is an error naming it (a typo must not silently
//! fall back to a default). Relative paths in a recipe are resolved against the recipe's
//! folder; `--emit-recipe` writes absolute paths, so the file works from anywhere.
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The keys a recipe may hold (also the flags that override them).
pub const KEYS: &[&str] = &[
    "cleanup", "prune", "quantize", "mode", "calib", "eval", "max_drop",
];

/// The pipeline's settings; `None` means "not set" (the defaults apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Run the clean-up passes first (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<bool>,
    /// Fraction of each prunable group's channels to remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<f64>,
    /// `int8`, `int4`, `fp16` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantize: Option<String>,
    /// `weight`, `dynamic` or `static`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calib: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<PathBuf>,
    /// Accuracy budget in percentage points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_drop: Option<f64>,
}

impl Recipe {
    /// Reads a recipe; relative paths become relative to the recipe's folder.
    pub fn load(path: &Path) -> Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the recipe", path.display()))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: not a TOML recipe: {}", path.display(), e.message())
        })?;
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                bail!(
                    "{}: unknown key {key:?} in the recipe (known: {})",
                    path.display(),
                    KEYS.join(", ")
                );
            }
        }
        let mut recipe: Recipe = table.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: bad recipe: {}", path.display(), e.message())
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for p in [&mut recipe.calib, &mut recipe.eval].into_iter().flatten() {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(recipe)
    }

    /// `self` with every setting `flags` has replacing the recipe's.
    pub fn overridden_by(self, flags: Recipe) -> Recipe {
        Recipe {
            cleanup: flags.cleanup.or(self.cleanup),
            prune: flags.prune.or(self.prune),
            quantize: flags.quantize.or(self.quantize),
            mode: flags.mode.or(self.mode),
            calib: flags.calib.or(self.calib),
            eval: flags.eval.or(self.eval),
            max_drop: flags.max_drop.or(self.max_drop),
        }
    }

    /// Writes the recipe as TOML (paths made absolute), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut r = self.clone();
        for p in [&mut r.calib, &mut r.eval].into_iter().flatten() {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs;
            }
        }
        let text = toml::to_string(&r).context("cannot write the recipe as TOML")?;
        let text = format!(
            "# whittle compress recipe (keys: {})\n{text}",
            KEYS.join(", ")
        );
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("{}: cannot write the recipe", path.display()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(path)
            .with_context(|| format!("{}: cannot write the recipe", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_recipe() {
        let file = Recipe {
            prune: Some(0.5),
            quantize: Some("int4".into()),
            ..Default::default()
        };
        let flags = Recipe {
            quantize: Some("int8".into()),
            ..Default::default()
        };
        let r = file.overridden_by(flags);
        assert_eq!(r.prune, Some(0.5));
        assert_eq!(r.quantize.as_deref(), Some("int8"));
    }
}
